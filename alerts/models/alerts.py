"""Alerts with their schedule and escalation policy, and the occurrences planned from them."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from timezone_field import TimeZoneField

from alerts import schedules, validators
from alerts.models.contacts import Contact
from alerts.schedules import ScheduleKind


class AlertState(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    COMPLETED = "completed", "Completed"


class IntervalUnit(models.TextChoices):
    MINUTES = "minutes", "minutes"
    HOURS = "hours", "hours"
    DAYS = "days", "days"


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class EscalationPolicy(models.Model):
    """Who is notified, how, and how long to wait before the next step, until an occurrence is acknowledged.

    Reusable: several alerts may walk the same policy. Each occurrence of such an alert walks its steps in
    order, then starts over ``repeat`` more times; its acknowledgement stops the walk (``alerts/escalation.py``).
    """

    name = models.CharField(max_length=200, unique=True)
    repeat = models.PositiveIntegerField(
        "repeat the steps",
        default=0,
        help_text="How many more times to walk all the steps after the first round, e.g. 2 for three rounds "
        "in all; 0: once. Between rounds, the last step's wait.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "escalation policies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    """One step of a policy: notify these contacts on these channels, then wait before the next step."""

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(validators=[MinValueValidator(1)], help_text="1 for the first step.")
    notify_alert_recipients = models.BooleanField(
        "the alert's recipients",
        default=False,
        help_text="Notify the recipients of the alert being escalated (besides the contacts chosen below).",
    )
    contacts = models.ManyToManyField(Contact, blank=True, related_name="escalation_steps")
    send_sms = models.BooleanField("SMS", default=True)
    send_email = models.BooleanField("email", default=False)
    send_webhook = models.BooleanField("webhook", default=False)
    wait_minutes = models.PositiveIntegerField(
        default=5, help_text="Minutes to wait after this step before the next one, e.g. 5."
    )

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="escalation_step_position_once"),
            models.CheckConstraint(
                condition=models.Q(send_sms=True) | models.Q(send_email=True) | models.Q(send_webhook=True),
                name="escalation_step_has_a_channel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy}: step {self.position}"

    @property
    def channels(self) -> list[str]:
        chosen = ((Channel.SMS, self.send_sms), (Channel.EMAIL, self.send_email), (Channel.WEBHOOK, self.send_webhook))
        return [c for c, on in chosen if on]

    def clean(self) -> None:
        if not (self.send_sms or self.send_email or self.send_webhook):
            raise ValidationError("Choose at least one channel for this step: SMS, email or webhook.")


class Alert(models.Model):
    name = models.CharField(max_length=200)
    message = models.TextField(
        validators=[validators.validate_message_template],
        help_text="A Django template; {{ contact.name }} and {{ alert.name }} are available. "
        "E.g. “Hi {{ contact.name }}, the server room is above 30°C.”",
    )
    sms_text = models.TextField(
        "SMS text",
        blank=True,
        validators=[validators.validate_message_template],
        help_text="Optional: a shorter template for SMS, e.g. “{{ alert.name }}: server room above 30°C”. "
        "Empty: the message.",
    )
    email_subject = models.CharField(
        max_length=200,
        blank=True,
        validators=[validators.validate_message_template],
        help_text="Optional template, e.g. “[urgent] {{ alert.name }}”. Empty: the alert's name.",
    )
    email_body = models.TextField(
        blank=True,
        validators=[validators.validate_message_template],
        help_text="Optional: a longer template for email. Empty: the message.",
    )
    urgent = models.BooleanField(default=False, help_text="Deliver even during the recipients' quiet hours.")
    send_sms = models.BooleanField("SMS", default=True)
    send_email = models.BooleanField("email", default=False)
    send_webhook = models.BooleanField(
        "webhook", default=False, help_text="POST to each recipient's webhook URL (recipients without one get none)."
    )
    fallback_to_other_channel = models.BooleanField(
        "fall back to the contact's other channel",
        default=False,
        help_text="When an SMS fails for good (invalid number, landline, opted out), email that contact instead, "
        "once per occurrence; and SMS a contact whose email address is refused.",
    )
    recipients = models.ManyToManyField(Contact, related_name="alerts")
    # PROTECT: deleting a policy in use would silently turn its alerts into plain ones that page nobody past
    # their recipients; the admin names the alerts that use it instead.
    escalation_policy = models.ForeignKey(
        EscalationPolicy,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alerts",
        help_text="Optional: each occurrence walks the policy's steps (who, which channels, how long to wait) "
        "until it is acknowledged, instead of notifying the recipients once on the channels above.",
    )
    timezone = TimeZoneField(
        default="UTC", help_text="Times of the schedule are read in this zone (IANA name), e.g. Europe/Paris."
    )
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.ACTIVE)

    schedule_kind = models.CharField("schedule", max_length=16, choices=ScheduleKind.choices)
    send_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Once: the moment to send, stored in UTC (entered in the alert's timezone).",
    )
    relative_base = models.DateTimeField(
        null=True, blank=True, help_text="Relative: the time the spec counts from; empty means when saved."
    )
    relative_spec = models.CharField(
        max_length=100,
        blank=True,
        help_text="Relative: e.g. “+1 month -1 week at 10:00”, “+2 days”, “+48 hours”, “+90 minutes”.",
    )
    crontab = models.CharField(
        max_length=200,
        blank=True,
        help_text="Recurring: minute hour day-of-month month day-of-week, in the alert's timezone. "
        "E.g. “0 9 * * mon-fri” (9:00 on weekdays), “*/15 * * * *”, “30 8 1 * *”.",
    )
    interval_every = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Recurring: e.g. 6 (with hours)."
    )
    interval_unit = models.CharField(max_length=8, choices=IntervalUnit.choices, blank=True)
    starts_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Interval: the first occurrence; the next ones follow every interval (empty: when saved).",
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Nothing is sent after this moment.")

    max_attempts = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1)], help_text="Attempts per delivery, e.g. 24."
    )
    retry_delay = models.DurationField(
        default=timedelta(hours=1), help_text="Between attempts, e.g. 01:00:00 for an hour."
    )
    # The next due time the planner has not turned into an occurrence yet (NULL: none to come). Planning
    # reads it and moves it on from there, never from "now minus a margin", so a late planner loses nothing.
    next_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(send_sms=True) | models.Q(send_email=True) | models.Q(send_webhook=True),
                name="alert_has_a_channel",
            ),
        ]
        indexes = [
            # The planner's scan: active alerts whose next occurrence comes within its look-ahead.
            models.Index(
                fields=["next_due_at"],
                name="alert_plan_due",
                condition=models.Q(state="active", next_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def channels(self) -> list[str]:
        chosen = ((Channel.SMS, self.send_sms), (Channel.EMAIL, self.send_email), (Channel.WEBHOOK, self.send_webhook))
        return [c for c, on in chosen if on]

    @property
    def is_recurring(self) -> bool:
        return self.schedule_kind in (ScheduleKind.CRONTAB, ScheduleKind.INTERVAL)

    def clean(self) -> None:
        # Here rather than in the admin form, so that every validated save gets its times.
        try:
            schedules.resolve_times(self)
        except schedules.ScheduleError as exc:
            field = "interval_every" if self.schedule_kind == ScheduleKind.INTERVAL else "relative_spec"
            raise ValidationError({field: str(exc)}) from None

    def abort_reason(self, now) -> str | None:
        """Why nothing should be sent for this alert now, or ``None`` if it should."""
        if self.state != AlertState.ACTIVE:
            return f"alert is {self.state}"
        if self.expires_at is not None and self.expires_at <= now:
            return f"alert expired at {self.expires_at:%Y-%m-%d %H:%M} UTC"
        return None


class Occurrence(models.Model):
    """One due time of an alert; its identity makes each occurrence deliverable once."""

    # No index of its own: the unique (alert, scheduled_for) below serves every lookup by alert.
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="occurrences", db_index=False)
    scheduled_for = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    # Set for an alert with an escalation policy: the walk of this occurrence stops here. (Without a policy,
    # acknowledging stays the alert's state, as it always was.)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-scheduled_for"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "scheduled_for"], name="occurrence_once_per_time"),
        ]

    def __str__(self) -> str:
        return f"{self.alert} at {self.scheduled_for:%Y-%m-%d %H:%M} UTC"

    def acknowledgement_reason(self) -> str | None:
        """Why the escalation of this occurrence stopped, or ``None`` while nobody has acknowledged it."""
        if self.acknowledged_at is None:
            return None
        return f"occurrence acknowledged by {self.acknowledged_by} at {self.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC"
