"""The people alerts go to: their addresses, channels, quiet hours and webhook secret."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from timezone_field import TimeZoneField

from alerts import validators


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
