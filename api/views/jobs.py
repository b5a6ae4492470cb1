"""Jobs: the /jobs list's filters and keyset paging, a job with its timeline, and the operators' actions.

Reads go through ``scheduler.selectors`` and writes through ``scheduler.services``, as the job pages do.
"""

from __future__ import annotations

import re

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.serializers import (
    CancelAllResultSerializer,
    CancelAllSerializer,
    ErrorSerializer,
    JobActionSerializer,
    JobDetailSerializer,
    JobPageSerializer,
)
from api.views.base import ModelPermissionsMixin
from scheduler import selectors, services
from scheduler.forms import STATE_CHOICES, JobFilterForm
from scheduler.models import Job

MAX_PAGE_SIZE = 500

LIST_PARAMETERS = [
    OpenApiParameter("state", str, enum=[value for value, _ in STATE_CHOICES if value], description="State or group."),
    OpenApiParameter("task", str, description="A task name, e.g. alerts.deliver_sms."),
    OpenApiParameter("target", str, description="What the jobs are about, e.g. alerts.alert:12."),
    OpenApiParameter("q", str, description="Words of the label (for alert jobs: the alert's name)."),
    OpenApiParameter("changed_from", str, description="UTC day, inclusive (YYYY-MM-DD)."),
    OpenApiParameter("changed_to", str, description="UTC day, inclusive (YYYY-MM-DD)."),
    OpenApiParameter("unseen", bool, description="Only successes and failures nobody has looked at yet."),
    OpenApiParameter("after", str, description="The `next` cursor of the page before: older jobs."),
    OpenApiParameter("before", str, description="The `previous` cursor of the page after: newer jobs."),
    OpenApiParameter("page_size", int, description=f"1 to {MAX_PAGE_SIZE}; {selectors.PAGE_SIZE} by default."),
]
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such job.")


def _operator(request) -> str:
    return f"{request.user.get_username()} (API)"


def _job_number(pk: str) -> int:
    """The job id in the URL. The router matches any path segment, so "abc" gets here: it names no job."""
    if not re.fullmatch(r"[0-9]+", pk):
        raise NotFound(f"There is no job “{pk}”: a job's id is a number.")
    return int(pk)


class _OnePageSchema(AutoSchema):
    """The list answers one object (a page with its cursors), not the list of jobs drf-spectacular assumes."""

    def _is_list_view(self, serializer=None) -> bool:
        return False


class JobViewSet(ModelPermissionsMixin, viewsets.GenericViewSet):
    schema = _OnePageSchema()
    pagination_class = None
    queryset = Job.objects.all()
    serializer_class = JobDetailSerializer
    action_permissions = {"cancel": "change", "run_now": "change", "cancel_all": "change"}

    def _job_id(self) -> int:
        job_id = _job_number(self.kwargs["pk"])
        if not Job.objects.filter(pk=job_id).exists():
            raise NotFound(f"There is no job #{job_id}; it may have been deleted.")
        return job_id

    @extend_schema(parameters=LIST_PARAMETERS, responses={200: JobPageSerializer})
    def list(self, request) -> Response:
        """Newest change first; the filters of /jobs. Invalid filters are refused (400), not ignored."""
        form = JobFilterForm(request.query_params)
        if not form.is_valid():
            raise serializers.ValidationError({name: list(errors) for name, errors in form.errors.items()})
        size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE).run_validation(
            request.query_params.get("page_size", selectors.PAGE_SIZE)
        )
        after, before = form.cursors()
        page = selectors.jobs_page(form.filters(), after=after, before=before, size=size)
        return Response(
            {
                "results": JobPageSerializer().fields["results"].to_representation(page.jobs),
                "next": str(page.next_cursor) if page.next_cursor else None,
                "previous": str(page.previous_cursor) if page.previous_cursor else None,
            }
        )

    @extend_schema(responses={200: JobDetailSerializer, 404: NOT_FOUND})
    def retrieve(self, request, pk=None) -> Response:
        """The job with its timeline and errors. Reading it here does not mark it seen (the page does)."""
        try:
            job = selectors.job_for_page(_job_number(pk))
        except Job.DoesNotExist:
            raise NotFound(f"There is no job #{pk}; it may have been deleted.") from None
        return Response(JobDetailSerializer(job).data)

    @extend_schema(responses={204: None, 404: NOT_FOUND, 409: OpenApiResponse(ErrorSerializer)})
    def destroy(self, request, pk=None) -> Response:
        """Only jobs that are over (succeeded, failed, cancelled, aborted) can be deleted."""
        try:
            services.job_delete(job_id=self._job_id())
        except Job.DoesNotExist:
            raise NotFound(f"There is no job #{pk}.") from None
        except services.JobNotDeletable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: JobActionSerializer, 404: NOT_FOUND})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None) -> Response:
        """Cancel a waiting or running job (a running body stops at its next abort check)."""
        changed = services.job_cancel(job_id=self._job_id(), reason=f"cancelled by {_operator(request)}")
        detail = "Cancelled." if changed else "The job was no longer waiting or running; nothing changed."
        return Response({"changed": changed, "detail": detail})

    @extend_schema(request=None, responses={200: JobActionSerializer, 404: NOT_FOUND})
    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request, pk=None) -> Response:
        """Run a waiting job now instead of at its time, or give a failed job one more attempt."""
        changed = services.job_run_now(job_id=self._job_id())
        detail = "Queued to run now." if changed else "The job is not waiting in the database nor failed."
        return Response({"changed": changed, "detail": detail})

    @extend_schema(request=CancelAllSerializer, responses={200: CancelAllResultSerializer})
    @action(detail=False, methods=["post"], url_path="cancel-all")
    def cancel_all(self, request) -> Response:
        """Cancel every waiting and running job. Needs ``"confirm": true``."""
        incoming = CancelAllSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        cancelled = services.jobs_cancel_all(
            reason=f"cancelled by {_operator(request)} (cancel all)", terminate=incoming.validated_data["terminate"]
        )
        return Response({"cancelled": cancelled})
