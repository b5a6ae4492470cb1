"""Delivering one occurrence of an alert on one channel: the body of a delivery job.

Each (occurrence, contact, channel) has one Delivery row. It is claimed (``pending -> sending``) with a
conditional UPDATE before the provider is called, and the call happens outside any transaction. If the
worker dies between the provider's answer and the record, the row stays ``sending``; the next attempt
finds it so and marks it ``unknown`` instead of sending again: a possibly-duplicated SMS is worse than
a possibly-missed one that an operator can see and resend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from alerts.channel_health import delivery_failed_for_good, delivery_hold
from alerts.channels.base import DeliveryError
from alerts.channels.email import email_channel
from alerts.channels.sms import sms_channel
from alerts.messages import channel_text, email_subject
from alerts.models import Channel, Contact, Delivery, DeliveryState, Occurrence
from alerts.services import alert_complete_if_done
from scheduler.errors import RetryLater

ACK_SALT = "alerts.acknowledge"
FINAL_DELIVERY_STATES = {DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.UNDELIVERED, DeliveryState.FAILED}


class DeliveryFailed(Exception):
    """Every remaining delivery of the occurrence failed for good (an invalid number, a refused address)."""


@dataclass
class Tally:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    via_sink: bool = False
    retry: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # deliveries moved to a job after quiet hours

    def as_result(self) -> dict[str, object]:
        return {"sent": self.sent, "skipped": self.skipped, "failed": self.failed, "unknown": self.unknown,
                "via_sink": self.via_sink}  # fmt: skip


def acknowledgement_url(*, alert_id: int, contact_id: int) -> str:
    token = signing.dumps({"a": alert_id, "c": contact_id}, salt=ACK_SALT, compress=True)
    return settings.PUBLIC_BASE_URL + reverse("alerts:acknowledge", args=[token])


def _address(contact: Contact, channel: str) -> str:
    return contact.phone if channel == Channel.SMS else contact.email


def _message_text(occurrence: Occurrence, contact: Contact, channel: str) -> str:
    return channel_text(occurrence.alert, contact=contact, channel=channel)


def _compose(occurrence: Occurrence, contact: Contact, channel: str) -> str:
    link = acknowledgement_url(alert_id=occurrence.alert_id, contact_id=contact.pk)
    return f"{_message_text(occurrence, contact, channel)}\n\nAcknowledge: {link}"


def _claim(delivery: Delivery, job_id: int) -> bool:
    return bool(
        Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(
            state=DeliveryState.SENDING, attempts=F("attempts") + 1, job_id=job_id, modified_at=timezone.now()
        )
    )


def _record(delivery: Delivery, state: DeliveryState, **values: object) -> None:
    Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.SENDING).update(
        state=state, modified_at=timezone.now(), **values
    )


def occurrence_deliver(*, job, occurrence_id: int, channel: str, contact_id: int | None = None) -> dict[str, object]:
    """Deliver the occurrence to every active recipient on ``channel`` (only ``contact_id``'s, for a fallback
    or an after-quiet-hours job: see ``alerts/channel_health.py``); raise to retry or fail the job."""
    occurrence = Occurrence.objects.select_related("alert").filter(pk=occurrence_id).first()
    if occurrence is None:
        job.abort("the occurrence no longer exists (the alert was edited or deleted)")
    alert = occurrence.alert
    reason = alert.abort_reason(timezone.now())
    if reason:
        job.abort(reason)
    recipients = [c for c in alert.recipients.all() if c.is_active and _address(c, channel)]
    if contact_id is not None:
        recipients = [c for c in recipients if c.pk == contact_id]
    if not recipients:
        job.abort(f"no active recipient with an address for {channel}")
    sender = sms_channel() if channel == Channel.SMS else email_channel()
    tally = Tally()
    for number, contact in enumerate(recipients, start=1):
        job.check()
        if len(recipients) > 1:
            job.progress((number - 1) / len(recipients), f"{channel} to {contact.name}")
        subject = email_subject(alert, contact=contact) if channel == Channel.EMAIL else ""
        _deliver_to(job, sender, occurrence, contact, channel, subject, tally)
    if tally.retry:
        raise RetryLater(f"{len(tally.retry)} delivery(ies) failed for now: " + "; ".join(tally.retry)[:400])
    if tally.failed and not tally.sent:
        raise DeliveryFailed(f"every {channel} delivery failed for good; see the deliveries")
    summary = f"{channel}: sent {tally.sent}, skipped {tally.skipped}, failed {tally.failed}, unknown {tally.unknown}"
    if tally.waiting:
        summary += f"; {len(tally.waiting)} waiting for quiet hours: " + "; ".join(tally.waiting)[:300]
    if tally.via_sink:
        summary = f"Twilio is not configured: the SMS went to the local sink, not to a phone ({summary})"
    job.summarize(summary)
    alert_complete_if_done(alert=alert, finishing_job_id=job.id)
    return tally.as_result()


def _deliver_to(job, sender, occurrence, contact, channel, subject, tally: Tally) -> None:
    held = delivery_hold(job=job, occurrence=occurrence, contact=contact, channel=channel)
    if held is not None:
        if held.skipped:
            tally.skipped += 1
        else:
            tally.waiting.append(held.reason)
        return
    # A first attempt creates the row already claimed: one INSERT instead of an INSERT and an UPDATE.
    delivery, created = Delivery.objects.get_or_create(
        occurrence=occurrence,
        contact=contact,
        channel=channel,
        defaults={"address": _address(contact, channel), "state": DeliveryState.SENDING, "attempts": 1,
                  "job_id": job.id},
    )  # fmt: skip
    if not created and delivery.state == DeliveryState.SENDING:
        # An earlier attempt claimed it and never recorded the outcome: it may well have been sent.
        _record(delivery, DeliveryState.UNKNOWN, error="the worker stopped between sending and recording")
        tally.unknown += 1
        return
    if not created and (delivery.state != DeliveryState.PENDING or not _claim(delivery, job.id)):
        tally.skipped += 1
        return
    started = time.monotonic()
    attempt_started = timezone.now()
    try:
        if delivery.unanswered_since and _found_at_provider(sender, delivery, occurrence, contact, tally):
            return
        sent = sender.send(to=delivery.address, body=_compose(occurrence, contact, channel), subject=subject)
    except DeliveryError as exc:
        if exc.permanent:
            with transaction.atomic():
                _record(delivery, DeliveryState.FAILED, error=str(exc)[:2000])
                delivery_failed_for_good(delivery=delivery, code=exc.code)
            tally.failed += 1
        else:
            # Back to pending, so that the next attempt sends it; the job's retry policy decides when.
            unanswered = delivery.unanswered_since or (attempt_started if exc.code == "read-timeout" else None)
            _record(delivery, DeliveryState.PENDING, error=str(exc)[:2000], unanswered_since=unanswered)
            tally.retry.append(f"{contact.name}: {exc}")
        return
    _record(
        delivery, DeliveryState.SENT, provider_id=sent.provider_id, error="", unanswered_since=None,
        note=(sent.note or f"sent in {time.monotonic() - started:.2f}s")[:200],
    )  # fmt: skip
    tally.sent += 1
    tally.via_sink = tally.via_sink or sent.via_sink


def _found_at_provider(sender, delivery: Delivery, occurrence: Occurrence, contact: Contact, tally: Tally) -> bool:
    """After a send that got no answer, ask the provider whether it took the message before resending."""
    found = sender.find_sent(
        to=delivery.address,
        body_start=_message_text(occurrence, contact, delivery.channel),
        since=delivery.unanswered_since,
    )
    if found is None:
        return False
    _record(
        delivery,
        DeliveryState.SENT,
        provider_id=found,
        error="",
        unanswered_since=None,
        note="the provider had accepted it despite the timeout; not sent again",
    )
    tally.sent += 1
    return True
