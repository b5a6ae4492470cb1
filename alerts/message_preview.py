"""The alert form's live preview of its texts: what a recipient receives, and what the SMS costs."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.template.loader import render_to_string

from alerts.delivery import acknowledgement_url
from alerts.messages import SAMPLE_CONTACT, channel_text, email_subject, sms_size, ucs2_warning
from alerts.models import Alert, Contact
from alerts.validators import validate_message_template

MESSAGE_FIELDS = ("name", "message", "sms_text", "email_subject", "email_body")
TEMPLATE_FIELDS = ("message", "sms_text", "email_subject", "email_body")


def _template_errors(alert: Alert) -> dict[str, list[str]]:
    errors = {}
    for name in TEMPLATE_FIELDS:
        value = getattr(alert, name)
        if not value:
            continue
        try:
            validate_message_template(value)
        except ValidationError as exc:
            errors[str(Alert._meta.get_field(name).verbose_name)] = exc.messages
    return errors


def message_preview_html(alert: Alert, *, contact: Contact | None) -> str:
    """The SMS and the email ``contact`` (or a sample contact) would receive, with the SMS's size."""
    errors = _template_errors(alert)
    if not alert.message.strip():
        errors.setdefault("message", []).append("Type a message to see it as a recipient will.")
    who = contact or SAMPLE_CONTACT
    context: dict[str, object] = {"errors": errors, "contact": who, "sample": contact is None}
    if not errors:
        # The SMS as sent: the delivery adds the acknowledgement link, which counts towards its length.
        link = acknowledgement_url(alert_id=alert.pk or 0, contact_id=contact.pk if contact else 0)
        sms = f"{channel_text(alert, contact=who, channel='sms')}\n\nAcknowledge: {link}"
        size = sms_size(sms)
        context |= {
            "sms": sms,
            "size": size,
            "warning": ucs2_warning(size),
            "subject": email_subject(alert, contact=who),
            "email": channel_text(alert, contact=who, channel="email"),
        }
    return render_to_string("admin/alerts/alert/message_preview.html", context)
