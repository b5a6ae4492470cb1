"""Channel health: SMS opt-out (STOP / START replies, Twilio's 21610), skipping those who opted out,
holding deliveries during quiet hours, falling back to a contact's other channel when one fails for good, and
rotating a contact's webhook signing secret.

Opting out belongs to the phone number, not to one contact row: Twilio refuses every message to a number
that replied STOP, whoever we think owns it, so every contact with that number is opted out (and back in).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from alerts import channels
from alerts.escalation import NO_STAGE, Stage, stage_channels
from alerts.models import Alert, AlertState, Channel, Contact, Delivery, DeliveryState, Occurrence, new_webhook_secret
from alerts.planner import occurrence_job_key
from alerts.quiet_hours import describe, quiet_until
from alerts.tasks import DELIVERY_TASKS

logger = logging.getLogger(__name__)

# Twilio's error for a message to a number that replied STOP: "Attempt to send to unsubscribed recipient".
TWILIO_UNSUBSCRIBED = 21610
# Failures that say this contact cannot be reached on this channel, where the other one may do: Twilio's
# 21211 invalid number, 21614 not a mobile, 21610 unsubscribed, 30006 landline or unreachable carrier
# (a status callback); SMTP's 550 / 551 / 553 mailbox unavailable, not local, name not allowed, and an
# address Django cannot encode. Not a refusal that says our side is wrong (credentials, 552 too large).
FALLBACK_CODES = {Channel.SMS: {21211, 21614, 21610, 30006}, Channel.EMAIL: {550, 551, 553, "invalid"}}
OTHER_CHANNEL = {Channel.SMS: Channel.EMAIL, Channel.EMAIL: Channel.SMS}


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


def contacts_webhook_secret_rotate(*, contacts: QuerySet[Contact]) -> int:
    """Give each of ``contacts`` a new webhook signing secret (the old one stops working at once); return how many."""
    rotated = 0
    for pk in contacts.values_list("pk", flat=True):
        rotated += Contact.objects.filter(pk=pk).update(webhook_secret=new_webhook_secret())
    return rotated


def recipient_skip_reason(contact: Contact, channel: str) -> str | None:
    """Why ``contact`` must get nothing on ``channel``, or ``None`` if it may."""
    if channel == Channel.SMS and contact.sms_opted_out_at is not None:
        source = f" ({contact.sms_opt_out_source})" if contact.sms_opt_out_source else ""
        return f"opted out of SMS on {contact.sms_opted_out_at:%Y-%m-%d %H:%M} UTC{source}"
    return None


def delivery_skip_if_unwanted(
    *, occurrence: Occurrence, contact: Contact, channel: str, job_id: int, stage: Stage = NO_STAGE
) -> bool:
    """Record the delivery as ``skipped`` if the contact must not get it; ``True`` if it was skipped.

    Only a delivery not attempted yet (new, or pending) is skipped: one already sent stays sent, and one
    left ``sending`` goes through the normal path, which knows how to settle it.
    """
    reason = recipient_skip_reason(contact, channel)
    if reason is None:
        return False
    address = channels.get(channel).address(contact)
    with transaction.atomic():
        delivery, created = Delivery.objects.get_or_create(
            occurrence=occurrence,
            contact=contact,
            channel=channel,
            **stage.delivery_fields,
            defaults={"address": address, "state": DeliveryState.SKIPPED, "note": reason[:200], "job_id": job_id},
        )
        if not created:
            changed = Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(
                state=DeliveryState.SKIPPED, note=reason[:200], job_id=job_id, modified_at=timezone.now()
            )
            if not changed:
                return False
        delivery_fall_back(delivery=delivery, reason=reason)
    return True


@dataclass(frozen=True)
class Held:
    """A delivery not made now: skipped for good, or waiting (quiet hours) for the job named in ``reason``."""

    skipped: bool
    reason: str


def delivery_hold(
    *, job, occurrence: Occurrence, contact: Contact, channel: str, stage: Stage = NO_STAGE
) -> Held | None:
    """Whether this delivery must not be made now, and why; ``None`` to deliver it."""
    if delivery_skip_if_unwanted(occurrence=occurrence, contact=contact, channel=channel, job_id=job.id, stage=stage):
        return Held(skipped=True, reason="")
    alert = occurrence.alert
    end = None if alert.urgent else quiet_until(contact, timezone.now())
    if end is None:
        return None
    return delivery_wait_for_quiet_hours(
        job=job, occurrence=occurrence, contact=contact, channel=channel, end=end, stage=stage
    )


def delivery_wait_for_quiet_hours(
    *, job, occurrence: Occurrence, contact: Contact, channel: str, end: datetime, stage: Stage = NO_STAGE
) -> Held | None:
    """Keep the delivery pending and give it a job of its own at the end of the contact's quiet hours.

    The new job (one contact, unique per occurrence, channel, contact and end) carries the wait on its ETA,
    so the job page shows when and why. ``None`` when this job is that one (it is due: deliver now) or when
    the delivery is past pending (sent already, or left sending: the normal path settles it).
    """
    alert = occurrence.alert
    until = describe(contact, end)
    address = channels.get(channel).address(contact)
    with transaction.atomic():
        waiting = DELIVERY_TASKS[channel].enqueue_with(
            args=[occurrence.pk],
            kwargs={"contact_id": contact.pk, **stage.job_kwargs},
            eta=end,
            target=alert,
            unique_key=f"{occurrence_job_key(occurrence.pk, channel, stage)}:contact:{contact.pk}"
            f":after:{end:%Y%m%dT%H%M%S}",
            label=f"{alert.name} · {channel} · {contact.name} after quiet hours (until {until})",
            max_attempts=alert.max_attempts,
            retry_delay=alert.retry_delay,
        )
        if waiting.pk == job.id:
            transaction.set_rollback(True)
            return None
        note = f"waits for quiet hours until {until} (job {waiting.pk})"
        delivery, created = Delivery.objects.get_or_create(
            occurrence=occurrence,
            contact=contact,
            channel=channel,
            **stage.delivery_fields,
            defaults={"address": address, "state": DeliveryState.PENDING, "note": note},
        )
        if not created and not Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(
            note=note, modified_at=timezone.now()
        ):
            transaction.set_rollback(True)
            return None
    return Held(skipped=False, reason=f"{contact.name} until {until} (job {waiting.pk})")


def delivery_failed_for_good(*, delivery: Delivery, code: object) -> None:
    """What a permanent failure of ``delivery`` implies besides its record (called in the same transaction).

    Twilio's 21610 means the phone replied STOP to our number: it is opted out from now on, so that the
    next alerts skip it instead of failing.
    """
    if delivery.channel == Channel.SMS and _as_int(code) == TWILIO_UNSUBSCRIBED:
        contact_sms_opt_out(phone=delivery.address, source=f"Twilio error {TWILIO_UNSUBSCRIBED}")
    codes = FALLBACK_CODES.get(delivery.channel, set())
    if code in codes or _as_int(code) in codes:
        delivery_fall_back(delivery=delivery, reason=f"the {delivery.channel} failed for good (error {code})")


def delivery_fall_back(*, delivery: Delivery, reason: str) -> Delivery | None:
    """Deliver ``delivery``'s occurrence to its contact on the other channel instead, if its alert says so.

    Once: the fallback is a delivery row of the other channel for that occurrence and contact (and
    escalation step), which is unique, and a job of its own (unique per occurrence, channel, step and
    contact) that delivers to that contact only. Nothing when the alert (or the step) uses the other channel
    anyway (the contact gets it already), when the contact has no address there, or when it must not get
    that channel either. Returns the new row.
    """
    alert = delivery.occurrence.alert
    other = OTHER_CHANNEL.get(delivery.channel)
    if other is None:  # a webhook has no other channel to fall back to
        return None
    contact = delivery.contact
    stage = Stage.of(delivery)
    address = channels.get(other).address(contact)
    if not alert.fallback_to_other_channel or other in stage_channels(alert, stage) or not address:
        return None
    if not contact.is_active or recipient_skip_reason(contact, other) is not None:
        return None
    with transaction.atomic():
        fallback, created = Delivery.objects.get_or_create(
            occurrence=delivery.occurrence,
            contact=contact,
            channel=other,
            **stage.delivery_fields,
            defaults={
                "address": address,
                "state": DeliveryState.PENDING,
                "note": f"fallback: {reason}"[:200],
                "fallback_for": delivery,
            },  # fmt: skip
        )
        if not created:
            return None
        # A one-off whose SMS was accepted is completed by then, and a late refusal (a status callback)
        # comes after that: it is active again until the fallback job completes it, as "send now" does.
        Alert.objects.filter(pk=alert.pk, state=AlertState.COMPLETED).update(state=AlertState.ACTIVE)
        DELIVERY_TASKS[other].enqueue_with(
            args=[delivery.occurrence_id],
            kwargs={"contact_id": contact.pk, **stage.job_kwargs},
            target=alert,
            unique_key=f"{occurrence_job_key(delivery.occurrence_id, other, stage)}:contact:{contact.pk}",
            label=f"{alert.name} · {other} · fallback to {contact.name}",
            max_attempts=alert.max_attempts,
            retry_delay=alert.retry_delay,
        )
    logger.info("delivery %s falls back to %s for contact %s: %s", delivery.pk, other, contact.pk, reason)
    return fallback


def delivery_refused_after_sending(*, provider_id: str, code: str) -> None:
    """A status callback said a sent SMS failed for good (e.g. 30006, a landline): as a refusal at sending."""
    delivery = Delivery.objects.filter(provider_id=provider_id).select_related("occurrence__alert", "contact").first()
    if delivery is None or not code:
        return
    with transaction.atomic():
        delivery_failed_for_good(delivery=delivery, code=_as_int(code) or code)


def _as_int(code: object) -> int | None:
    try:
        return int(str(code))
    except ValueError:
        return None
