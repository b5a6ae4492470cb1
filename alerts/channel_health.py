"""Channel health: SMS opt-out (STOP / START replies, Twilio's 21610) and skipping those who opted out.

Opting out belongs to the phone number, not to one contact row: Twilio refuses every message to a number
that replied STOP, whoever we think owns it, so every contact with that number is opted out (and back in).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from alerts.models import Channel, Contact, Delivery, DeliveryState, Occurrence

logger = logging.getLogger(__name__)

# Twilio's error for a message to a number that replied STOP: "Attempt to send to unsubscribed recipient".
TWILIO_UNSUBSCRIBED = 21610


def contact_sms_opt_out(*, phone: str, source: str, at: datetime | None = None) -> int:
    """Mark every contact with ``phone`` as opted out of SMS (keeping the first time); return how many changed."""
    if not phone:
        return 0
    changed = Contact.objects.filter(phone=phone, sms_opted_out_at__isnull=True).update(
        sms_opted_out_at=at or timezone.now(), sms_opt_out_source=source[:100]
    )
    if changed:
        logger.info("%s contact(s) with phone %s opted out of SMS: %s", changed, phone, source)
    return changed


def contact_sms_opt_in(*, phone: str) -> int:
    """Clear the SMS opt-out of every contact with ``phone`` (a START reply); return how many changed."""
    if not phone:
        return 0
    changed = Contact.objects.filter(phone=phone, sms_opted_out_at__isnull=False).update(
        sms_opted_out_at=None, sms_opt_out_source=""
    )
    if changed:
        logger.info("%s contact(s) with phone %s opted back in to SMS", changed, phone)
    return changed


def contacts_sms_opt_out_clear(*, contacts: QuerySet[Contact]) -> int:
    """An admin clears the opt-out of ``contacts``; return how many changed."""
    return contacts.filter(sms_opted_out_at__isnull=False).update(sms_opted_out_at=None, sms_opt_out_source="")


def recipient_skip_reason(contact: Contact, channel: str) -> str | None:
    """Why ``contact`` must get nothing on ``channel``, or ``None`` if it may."""
    if channel == Channel.SMS and contact.sms_opted_out_at is not None:
        source = f" ({contact.sms_opt_out_source})" if contact.sms_opt_out_source else ""
        return f"opted out of SMS on {contact.sms_opted_out_at:%Y-%m-%d %H:%M} UTC{source}"
    return None


def delivery_skip_if_unwanted(*, occurrence: Occurrence, contact: Contact, channel: str, job_id: int) -> bool:
    """Record the delivery as ``skipped`` if the contact must not get it; ``True`` if it was skipped.

    Only a delivery not attempted yet (new, or pending) is skipped: one already sent stays sent, and one
    left ``sending`` goes through the normal path, which knows how to settle it.
    """
    reason = recipient_skip_reason(contact, channel)
    if reason is None:
        return False
    address = contact.phone if channel == Channel.SMS else contact.email
    delivery, created = Delivery.objects.get_or_create(
        occurrence=occurrence,
        contact=contact,
        channel=channel,
        defaults={"address": address, "state": DeliveryState.SKIPPED, "note": reason[:200], "job_id": job_id},
    )
    if not created:
        changed = Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(
            state=DeliveryState.SKIPPED, note=reason[:200], job_id=job_id, modified_at=timezone.now()
        )
        if not changed:
            return False
    return True


def delivery_failed_for_good(*, delivery: Delivery, code: object) -> None:
    """What a permanent failure of ``delivery`` implies besides its record (called in the same transaction).

    Twilio's 21610 means the phone replied STOP to our number: it is opted out from now on, so that the
    next alerts skip it instead of failing.
    """
    if delivery.channel == Channel.SMS and _as_int(code) == TWILIO_UNSUBSCRIBED:
        contact_sms_opt_out(phone=delivery.address, source=f"Twilio error {TWILIO_UNSUBSCRIBED}")


def _as_int(code: object) -> int | None:
    try:
        return int(str(code))
    except ValueError:
        return None
