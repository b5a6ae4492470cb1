"""Validation of what admins type: phone numbers, webhook URLs and message templates."""

from __future__ import annotations

from urllib.parse import urlsplit

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import models
from django.template import TemplateSyntaxError

from alerts.messages import EXAMPLES, SAMPLE_ALERT, SAMPLE_CONTACT, render_message, unclosed_tag


def normalize_phone(value: str) -> str:
    """Return ``value`` in E.164 (``+442079460958``), or raise ``ValidationError`` saying what is wrong."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            "Enter the number in international form, starting with + and the country code, e.g. +44 20 7946 0958.",
            code="invalid_phone",
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{value} is not a valid phone number.", code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class PhoneNumberField(models.CharField):
    """A phone number, validated and stored in E.164."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return value
        return normalize_phone(value)


WEBHOOK_URL_EXAMPLE = "e.g. https://hooks.example.com/alerts"


def validate_webhook_url(value: str) -> None:
    """An http or https URL with a host.

    Not Django's ``URLValidator``: it refuses a host name without a dot, and a relay running beside the
    service is often reached by one (``http://relay:8080/hook`` on a Compose network). Whether the host may
    be a private address is decided when sending (``WEBHOOK_ALLOW_PRIVATE_NETWORKS``): a name can resolve
    to another address by then.
    """
    if any(c.isspace() for c in value):
        raise ValidationError(f"A webhook URL has no spaces or line breaks, {WEBHOOK_URL_EXAMPLE}.", code="invalid_url")
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port  # reading the port checks it
    except ValueError as exc:
        raise ValidationError(f"This is not a valid URL ({exc}), {WEBHOOK_URL_EXAMPLE}.", code="invalid_url") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError(
            f"A webhook URL starts with https:// (or http://), {WEBHOOK_URL_EXAMPLE}.", code="invalid_url_scheme"
        )
    if not host:
        raise ValidationError(f"The webhook URL has no host, {WEBHOOK_URL_EXAMPLE}.", code="invalid_url")


def validate_message_template(value: str) -> None:
    """A template error is a form error now, not a failure at send time."""
    unclosed = unclosed_tag(value)
    if unclosed is not None:
        text, closer = unclosed
        raise ValidationError(
            f"The message is not a valid template: “{text}” is not closed; close it with “{closer}” on the same "
            f"line, e.g. {EXAMPLES[closer]}.",
            code="invalid_template",
        )
    try:
        rendered = render_message(value, contact=SAMPLE_CONTACT, alert=SAMPLE_ALERT)
    except TemplateSyntaxError as exc:
        raise ValidationError(f"The message is not a valid template: {exc}", code="invalid_template") from None
    except Exception as exc:
        raise ValidationError(f"The message fails to render: {exc}", code="invalid_template") from None
    if not rendered.strip():
        raise ValidationError("The message renders to nothing.", code="empty_message")


def validate_weekdays(value: str) -> None:
    """Weekday numbers, each once: 0 Monday … 6 Sunday, e.g. ``01234``."""
    if any(c not in "0123456" for c in value) or len(set(value)) != len(value):
        raise ValidationError(
            "Weekdays are the digits 0 (Monday) to 6 (Sunday), each once, e.g. 01234 for Monday to Friday.",
            code="invalid_weekdays",
        )
