"""Delivery records (one message of one occurrence to one contact on one channel), the SMS sink, sending
slots and inbound messages."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from alerts.models.alerts import Alert, Channel, Occurrence
from alerts.models.contacts import Contact


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
