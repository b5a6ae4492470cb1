"""Alerts: CRUD through the admin's form and the services the admin calls, and the admin's actions."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from alerts import schedules, services
from alerts.models import Alert, AlertState
from api.forms import AlertApiForm
from api.idempotency import HEADER, idempotent
from api.serializers import (
    ALERT_WRITE_FIELDS,
    AlertCancelSerializer,
    AlertSerializer,
    AlertStateSerializer,
    AlertWriteSerializer,
    ErrorSerializer,
    OccurrenceSerializer,
    PreviewSerializer,
    SendNowSerializer,
)
from api.views.base import ModelPermissionsMixin

IDEMPOTENCY = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    description="A retried request with the same key returns the first answer and creates nothing new "
    "(kept 24 hours; per user).",
)
CONFLICT = OpenApiResponse(ErrorSerializer, description="The alert's state does not allow it.")
MAX_PREVIEW = 50


def _form_data(alert: Alert | None, changes: dict) -> dict:
    """The form's data: the alert as the admin shows it (times on its wall clock), with the changes on top."""
    data: dict = {}
    if alert is not None:
        initial = AlertApiForm(instance=alert).initial
        data = {name: initial.get(name) for name in ALERT_WRITE_FIELDS if name in initial}
        data["recipients"] = [getattr(contact, "pk", contact) for contact in data.get("recipients") or []]
        data["timezone"] = str(data.get("timezone") or "UTC")
    return data | changes


def _form_errors(form: AlertApiForm) -> dict[str, list[str]]:
    return {("non_field_errors" if name == "__all__" else name): list(errors) for name, errors in form.errors.items()}


def _state_answer(alert: Alert, detail: str, code: int = status.HTTP_200_OK, **extra) -> Response:
    return Response({"alert": AlertSerializer(alert).data, "detail": detail, **extra}, status=code)


@extend_schema_view(
    create=extend_schema(request=AlertWriteSerializer, responses={201: AlertSerializer}, parameters=[IDEMPOTENCY]),
    update=extend_schema(request=AlertWriteSerializer, responses={200: AlertSerializer}),
    partial_update=extend_schema(request=AlertWriteSerializer, responses={200: AlertSerializer}),
    destroy=extend_schema(description="Cancels the alert's waiting and running jobs, then deletes it."),
)
class AlertViewSet(ModelPermissionsMixin, viewsets.ModelViewSet):
    """Alerts. Writes are validated by the admin's own form, so the rules and messages are the admin's."""

    queryset = Alert.objects.prefetch_related("recipients")
    serializer_class = AlertSerializer
    action_permissions = {
        "preview": "view",
        "send_now": "change",
        "pause": "change",
        "resume": "change",
        "cancel": "change",
        "acknowledge": "change",
        "duplicate": "add",
    }

    def _save(self, alert: Alert | None, *, partial: bool) -> Response:
        incoming = AlertWriteSerializer(data=self.request.data, partial=partial)
        incoming.is_valid(raise_exception=True)
        form = AlertApiForm(data=_form_data(alert, dict(incoming.validated_data)), instance=alert)
        if not form.is_valid():
            raise serializers.ValidationError(_form_errors(form))
        with transaction.atomic():
            saved = form.save()
            # What the admin does after saving: re-plan what is to come, plan what is due soon.
            services.alert_schedule_sync(alert=saved)
        saved = self.get_queryset().get(pk=saved.pk)
        code = status.HTTP_200_OK if alert is not None else status.HTTP_201_CREATED
        return Response(AlertSerializer(saved).data, status=code)

    def create(self, request, *args, **kwargs) -> Response:
        return idempotent(request, lambda: self._save(None, partial=False))

    def update(self, request, *args, **kwargs) -> Response:
        return self._save(self.get_object(), partial=kwargs.get("partial", False))

    def perform_destroy(self, instance: Alert) -> None:
        with transaction.atomic():
            services.alert_cancel(alert=instance)
            instance.delete()

    @extend_schema(
        parameters=[OpenApiParameter("count", int, description=f"How many (1 to {MAX_PREVIEW}; 5 by default).")],
        responses={200: PreviewSerializer},
    )
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None) -> Response:
        """The next occurrences by the schedule (none unless the alert is active, as in the admin)."""
        alert = self.get_object()
        count = serializers.IntegerField(min_value=1, max_value=MAX_PREVIEW).run_validation(
            request.query_params.get("count", 5)
        )
        times = []
        try:
            if alert.state == AlertState.ACTIVE:
                times = schedules.alert_due_times(alert, after=timezone.now(), count=count)
        except schedules.ScheduleError as exc:
            raise serializers.ValidationError({"schedule": [str(exc)]}) from None
        return Response({"state": alert.state, "occurrences": times})

    @extend_schema(request=None, parameters=[IDEMPOTENCY], responses={201: SendNowSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="send-now")
    def send_now(self, request, pk=None) -> Response:
        """Deliver an occurrence now, besides the schedule."""
        alert = self.get_object()

        def send() -> Response:
            try:
                occurrence = services.alert_send_now(alert=alert)
            except services.AlertNotActive as exc:
                return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
            jobs = f"/api/v1/jobs/?target=alerts.alert:{alert.pk}"
            return Response(
                {"occurrence": OccurrenceSerializer(occurrence).data, "jobs": jobs}, status=status.HTTP_201_CREATED
            )

        return idempotent(request, send)

    @extend_schema(request=None, responses={200: AlertStateSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None) -> Response:
        alert = self.get_object()
        if not services.alert_pause(alert=alert):
            return Response({"detail": f"“{alert}” is {alert.state}; only active alerts can be paused."}, status=409)
        return _state_answer(alert, "Paused: nothing is sent until it is resumed.")

    @extend_schema(request=None, responses={200: AlertStateSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None) -> Response:
        alert = self.get_object()
        try:
            services.alert_resume(alert=alert)
        except services.AlertNotActive as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return _state_answer(alert, "Resumed.")

    @extend_schema(request=None, responses={200: AlertCancelSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None) -> Response:
        """Cancel the alert and its waiting and running jobs."""
        alert = self.get_object()
        jobs = services.alert_cancel(alert=alert)
        alert.refresh_from_db(fields=["state"])
        return _state_answer(alert, f"Cancelled, with {jobs} job(s).", cancelled_jobs=jobs)

    @extend_schema(request=None, responses={200: AlertStateSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None) -> Response:
        """No more reminders; pending retries abort. With an escalation policy: the latest occurrence due stops
        its walk (a recurring alert goes on with its next occurrences)."""
        alert = self.get_object()
        if not services.alert_acknowledge(alert=alert, by=f"api:{request.user.get_username()}"):
            if alert.escalation_policy_id is not None and alert.state != AlertState.CANCELLED:
                detail = f"“{alert}” has no occurrence waiting for an acknowledgement."
            else:
                detail = f"“{alert}” is {alert.state}; it cannot be acknowledged."
            return Response({"detail": detail}, status=409)
        return _state_answer(alert, "Acknowledged.")

    @extend_schema(request=None, responses={201: AlertSerializer})
    @action(detail=True, methods=["post"])
    def duplicate(self, request, pk=None) -> Response:
        """A copy that starts paused."""
        copy = services.alert_duplicate(alert=self.get_object())
        return Response(AlertSerializer(self.get_queryset().get(pk=copy.pk)).data, status=status.HTTP_201_CREATED)
