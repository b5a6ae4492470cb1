"""Contacts, alerts with their schedule, occurrences and delivery records."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from timezone_field import TimeZoneField

from alerts import schedules, validators
from alerts.schedules import ScheduleKind


def new_webhook_secret() -> str:
    """A contact's webhook signing secret: 256 random bits, prefixed so that a leaked one is recognisable."""
    return "whsec_" + secrets.token_urlsafe(32)


class Contact(models.Model):
    name = models.CharField(max_length=200)
    phone = validators.PhoneNumberField(
        max_length=20,
        blank=True,
        help_text="In international form, e.g. +44 20 7946 0958; stored as E.164 (+442079460958).",
    )
    email = models.EmailField(blank=True)
    webhook_url = models.CharField(
        "webhook URL",
        max_length=500,
        blank=True,
        validators=[validators.validate_webhook_url],
        help_text="Alerts on the webhook channel are POSTed here as signed JSON, "
        "e.g. https://hooks.example.com/alerts.",
    )
    # Not editable: generated, shown read-only, replaced by the admin's "rotate" action. Each contact has its
    # own, so that one leaked receiver cannot forge another's alerts.
    webhook_secret = models.CharField(
        "webhook signing secret",
        max_length=100,
        default=new_webhook_secret,
        editable=False,
        help_text="The key of the X-Alerting-Signature HMAC on each webhook POST; the receiver checks it.",
    )
    timezone = TimeZoneField(default="UTC", help_text="IANA name, e.g. Europe/Paris.")
    is_active = models.BooleanField(default=True, help_text="Inactive contacts receive nothing.")
    # Set by a STOP reply or by Twilio's error 21610; cleared by START or by an admin. While set, the contact
    # gets no SMS: Twilio would refuse every one (21610) until the phone sends START.
    sms_opted_out_at = models.DateTimeField(
        "SMS opted out at", null=True, blank=True, help_text="When the phone asked for no more SMS; empty: it gets SMS."
    )
    sms_opt_out_source = models.CharField(
        "SMS opt-out source", max_length=100, blank=True, help_text="What opted it out, e.g. “reply STOP (SM…)”."
    )
    quiet_start = models.TimeField(
        null=True, blank=True, help_text="Quiet hours start, in the contact's timezone, e.g. 22:00. Non-urgent "
        "alerts due inside them wait until they end.",
    )  # fmt: skip
    quiet_end = models.TimeField(
        null=True, blank=True, help_text="Quiet hours end, e.g. 07:00 (the next day when earlier than the start)."
    )
    quiet_days = models.CharField(
        max_length=7,
        blank=True,
        default="0123456",
        validators=[validators.validate_weekdays],
        help_text="The days quiet hours start on: 0 Monday … 6 Sunday, e.g. 01234 for Monday to Friday nights.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["phone"], name="contact_phone")]

    def __str__(self) -> str:
        return self.name

    @property
    def sms_opted_out(self) -> bool:
        return self.sms_opted_out_at is not None

    def clean(self) -> None:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValidationError({"quiet_end": "Give both the start and the end of the quiet hours, or neither."})
        if self.quiet_start is not None and self.quiet_start == self.quiet_end:
            raise ValidationError({"quiet_end": "Quiet hours must end at another time than they start."})


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
            raise ValidationError({"relative_spec": str(exc)}) from None

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


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    UNDELIVERED = "undelivered", "Undelivered"
    UNKNOWN = "unknown", "Unknown"
    # Never attempted, on purpose (the contact opted out of SMS): the note says why.
    SKIPPED = "skipped", "Skipped"


class Delivery(models.Model):
    """One message of one occurrence to one contact on one channel: claimed before sending, sent once."""

    # No index of its own: the unique constraint below, which starts with it, serves lookups by occurrence.
    occurrence = models.ForeignKey(Occurrence, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # Where in the occurrence's escalation walk it was sent: round 1.. and step 1..; 0 and 0 without a policy.
    # Part of its identity, so that a contact of step 1 notified again in round 2 gets a second row, while a
    # retried step finds its own.
    escalation_round = models.PositiveIntegerField(default=0)
    escalation_step = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    address = models.CharField(
        max_length=500, blank=True, help_text="The phone number, email address or webhook URL it went to."
    )
    provider_id = models.CharField(
        max_length=100,
        blank=True,
        help_text="Twilio's message SID, the email's Message-ID, or the webhook's delivery id.",
    )
    error = models.TextField(blank=True)
    # The provider's own code for the last error (Twilio's 21211, an SMTP reply code, "read-timeout"): what
    # the metrics count failures by.
    error_code = models.CharField(max_length=32, blank=True)
    note = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Set when a send got no answer (a read timeout): the provider may have accepted the message, so the
    # next attempt asks it before sending again.
    unanswered_since = models.DateTimeField(null=True, blank=True)
    # The sending slot this delivery holds under SMS_PER_SECOND_PER_NUMBER: its job comes back then and
    # sends without reserving another one.
    send_after = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey(
        "scheduler.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    # Set on a delivery made because the contact's delivery on the alert's own channel failed for good.
    fallback_for = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fallbacks", db_index=False,
        help_text="The delivery on the other channel that failed for good, which this one replaces.",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["occurrence", "contact", "channel", "escalation_round", "escalation_step"],
                name="delivery_once_per_step",
            ),
        ]
        indexes = [
            models.Index(fields=["provider_id"], name="delivery_provider_id"),
            # Only fallbacks are ever looked up by it: the rows without one stay out of the index.
            models.Index(
                fields=["fallback_for"], condition=Q(fallback_for__isnull=False), name="delivery_fallback_for"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.contact} ({self.state})"


class SmsSinkMessage(models.Model):
    """An SMS that went nowhere because Twilio is not configured: the local sink of `make run`."""

    to = models.CharField(max_length=32)
    sender = models.CharField(max_length=32, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "SMS in the local sink"
        verbose_name_plural = "SMS in the local sink"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"to {self.to} at {self.created_at:%Y-%m-%d %H:%M:%S} UTC"


class SendSlot(models.Model):
    """The next free sending moment of one sending number: a rate limit shared by every worker."""

    sender = models.CharField(max_length=64, unique=True)
    next_free_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.sender}: free at {self.next_free_at:%H:%M:%S.%f}"


class InboundMessage(models.Model):
    """An SMS received through Twilio's webhook, kept by its SID.

    Twilio's signature has no nonce: a captured request stays valid for ever. Remembering each SID makes a
    replayed request change nothing, and ``received_at`` bounds what the reply can acknowledge.
    """

    sid = models.CharField("message SID", max_length=64, unique=True)
    sender = models.CharField(max_length=32, blank=True)
    body = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    acknowledged = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="What it acknowledged."
    )

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.sid} from {self.sender}"
