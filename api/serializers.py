"""What the API reads and writes. Alerts are validated by the admin's form (``api/forms.py``)."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.models import Alert, AlertState, Contact, Delivery, IntervalUnit, Occurrence
from alerts.schedules import ScheduleKind
from scheduler.models import Job, JobEvent


def field_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    """A Django ``ValidationError`` as DRF's field-keyed errors (``__all__`` becomes ``non_field_errors``)."""
    if not hasattr(error, "error_dict"):
        return {"non_field_errors": error.messages}
    return {
        ("non_field_errors" if name == "__all__" else name): [m for e in errors for m in e.messages]
        for name, errors in error.error_dict.items()
    }


class TimezoneField(serializers.CharField):
    """An IANA zone name; checked by the model field, written out as its name."""

    def to_representation(self, value) -> str:
        return str(value)


@extend_schema_field(
    {
        "type": "string",
        "format": "date-time",
        "nullable": True,
        "description": "ISO 8601. Without an offset it is read in the alert's timezone, as the admin reads it.",
    }
)
class LocalDateTimeField(serializers.Field):
    """Kept naive when sent naive, so that the admin form reads it in the alert's timezone."""

    default_error_messages = {"invalid": "Enter a date and time in ISO 8601, e.g. 2030-06-01T09:00."}

    def to_internal_value(self, data) -> datetime | None:
        if data in (None, ""):
            return None
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            value = parse_datetime(data.strip())
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        return value

    def to_representation(self, value):
        return value.isoformat() if value else None


# --- Contacts --------------------------------------------------------------------------------------------


class ContactSerializer(serializers.ModelSerializer):
    timezone = TimezoneField(max_length=64, required=False, help_text="IANA name, e.g. Europe/Paris.")

    class Meta:
        model = Contact
        fields = [
            "id", "name", "phone", "email", "webhook_url", "webhook_secret", "timezone", "is_active", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "webhook_secret", "created_at"]
        extra_kwargs = {
            "phone": {"help_text": "International form, e.g. +44 20 7946 0958; stored as E.164."},
            "webhook_secret": {"help_text": "Generated: the key of the X-Alerting-Signature HMAC on webhook POSTs."},
        }

    def _validated_instance(self, instance: Contact, attrs: dict) -> Contact:
        for name, value in attrs.items():
            try:
                setattr(instance, name, value)
            except DjangoValidationError as exc:
                # The timezone field checks its value when it is assigned.
                raise serializers.ValidationError({name: exc.messages}) from None
        try:
            # The model's validation, as the admin's form runs it: phone parsed to E.164, zone checked.
            instance.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(field_errors(exc)) from None
        return instance

    def create(self, validated_data: dict) -> Contact:
        contact = self._validated_instance(Contact(), validated_data)
        contact.save()
        return contact

    def update(self, instance: Contact, validated_data: dict) -> Contact:
        contact = self._validated_instance(instance, validated_data)
        contact.save()
        return contact


# --- Alerts ----------------------------------------------------------------------------------------------


class AlertSerializer(serializers.ModelSerializer):
    """An alert as read. Writes go through ``AlertWriteSerializer``."""

    timezone = TimezoneField(read_only=True)
    recipients = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    interval_unit = serializers.ChoiceField(choices=IntervalUnit.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id", "name", "message", "sms_text", "email_subject", "email_body", "send_sms", "send_email",
            "send_webhook", "fallback_to_other_channel", "urgent", "recipients", "escalation_policy", "timezone",
            "state",
            "schedule_kind", "send_at", "relative_base", "relative_spec", "crontab", "interval_every",
            "interval_unit", "starts_at", "expires_at", "max_attempts", "retry_delay", "next_due_at",
            "created_at", "modified_at",
        ]  # fmt: skip
        read_only_fields = fields


class AlertWriteSerializer(serializers.Serializer):
    """The fields of the admin's alert form. Types are checked here, the rules by the form itself."""

    name = serializers.CharField(max_length=200)
    message = serializers.CharField(help_text="A Django template, e.g. “Hi {{ contact.name }}, …”.")
    sms_text = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Optional SMS template; empty: the message."
    )
    email_subject = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200, help_text="Optional; empty: the alert's name."
    )
    email_body = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Optional email template; empty: the message."
    )
    send_sms = serializers.BooleanField(required=False, default=True)
    send_email = serializers.BooleanField(required=False, default=False)
    send_webhook = serializers.BooleanField(
        required=False, default=False, help_text="POST to each recipient's webhook URL as signed JSON."
    )
    fallback_to_other_channel = serializers.BooleanField(
        required=False, default=False, help_text="Deliver by the contact's other channel when one fails for good."
    )
    urgent = serializers.BooleanField(required=False, default=False, help_text="Ignore the recipients' quiet hours.")
    recipients = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), max_length=1000, help_text="Contact ids."
    )
    escalation_policy = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**63 - 1,
        help_text="An escalation policy's id; null: none (the recipients are notified once).",
    )
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")
    schedule_kind = serializers.ChoiceField(choices=ScheduleKind.choices)
    send_at = LocalDateTimeField(required=False, allow_null=True)
    send_if_past = serializers.BooleanField(
        required=False, default=False, help_text="Once: a time in the past sends now instead of being refused."
    )
    relative_base = LocalDateTimeField(required=False, allow_null=True)
    relative_spec = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    crontab = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    interval_every = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**31 - 1)
    interval_unit = serializers.ChoiceField(choices=IntervalUnit.choices, required=False, allow_blank=True, default="")
    starts_at = LocalDateTimeField(required=False, allow_null=True)
    expires_at = LocalDateTimeField(required=False, allow_null=True)
    max_attempts = serializers.IntegerField(required=False, default=24, min_value=1, max_value=2**31 - 1)
    retry_delay = serializers.CharField(
        required=False, default="01:00:00", max_length=40, help_text="Between attempts: HH:MM:SS or ISO 8601."
    )


ALERT_WRITE_FIELDS = list(AlertWriteSerializer().fields)


class AlertStateSerializer(serializers.Serializer):
    alert = AlertSerializer()
    detail = serializers.CharField()


class AlertCancelSerializer(AlertStateSerializer):
    cancelled_jobs = serializers.IntegerField()


class PreviewSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=AlertState.choices)
    occurrences = serializers.ListField(child=serializers.DateTimeField())


# --- Occurrences and deliveries --------------------------------------------------------------------------


class OccurrenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Occurrence
        fields = ["id", "alert", "scheduled_for", "created_at"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id", "occurrence", "contact", "channel", "state", "address", "provider_id", "error", "note",
            "attempts", "job", "created_at", "modified_at",
        ]  # fmt: skip
        read_only_fields = fields


class SendNowSerializer(serializers.Serializer):
    occurrence = OccurrenceSerializer()
    jobs = serializers.CharField(help_text="The alert's jobs: /api/v1/jobs/?target=alerts.alert:<id>.")


# --- Jobs ------------------------------------------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id", "task_name", "label", "state", "status_message", "attempts", "max_attempts", "eta",
            "started_at", "finished_at", "runtime", "modified_at", "seen",
        ]  # fmt: skip
        read_only_fields = fields


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["kind", "at", "hostname", "message"]
        read_only_fields = fields


class JobDetailSerializer(serializers.ModelSerializer):
    timeline = JobEventSerializer(many=True, read_only=True)
    target = serializers.SerializerMethodField()
    errors = serializers.ListField(child=serializers.DictField(), read_only=True)
    result = serializers.JSONField(read_only=True)
    args = serializers.JSONField(read_only=True)
    kwargs = serializers.JSONField(read_only=True)

    class Meta:
        model = Job
        fields = [
            *JobSerializer.Meta.fields, "queue", "args", "kwargs", "created_at", "published_at", "worker",
            "progress", "unique_key", "target", "errors", "result", "timeline",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True, "example": "alerts.alert:12"})
    def get_target(self, job: Job) -> str | None:
        if job.target_type_id is None:
            return None
        return f"{job.target_type.app_label}.{job.target_type.model}:{job.target_id}"


class JobPageSerializer(serializers.Serializer):
    results = JobSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Older jobs: the cursor to pass as `after`.")
    previous = serializers.CharField(allow_null=True, help_text="Newer jobs: the cursor to pass as `before`.")


class JobActionSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    detail = serializers.CharField()


class CancelAllSerializer(serializers.Serializer):
    confirm = serializers.BooleanField(help_text="Must be true: cancels every waiting and running job.")
    terminate = serializers.BooleanField(
        required=False, default=False, help_text="Also SIGTERM the processes running jobs (emergencies only)."
    )

    def validate_confirm(self, value: bool) -> bool:
        if value is not True:
            raise serializers.ValidationError("Send “confirm”: true to cancel every waiting and running job.")
        return value


class CancelAllResultSerializer(serializers.Serializer):
    cancelled = serializers.IntegerField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
