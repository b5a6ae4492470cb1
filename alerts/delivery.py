"""Delivering one occurrence of an alert on one channel: the body of a delivery job.

Each (occurrence, contact, channel) has one Delivery row. It is claimed (``pending -> sending``) with a
conditional UPDATE before the provider is called, and the call happens outside any transaction. If the
worker dies between the claim and the record, the row stays ``sending``; the next attempt (after the
sweep recovers the job) asks the provider whether it has the message: found, it is recorded as sent;
absent, it is sent; the provider unreachable, the job tries again later. A channel that cannot be asked
(email, webhook) marks it ``unknown`` instead of sending again: a possibly-duplicated message is worse than a
possibly-missed one that an operator can see and resend.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NoReturn

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from alerts import channels, delivery_rows
from alerts.channel_health import delivery_failed_for_good, delivery_hold
from alerts.channels.base import DeliveryChannel, DeliveryError, Envelope
from alerts.escalation import NO_STAGE, Stage, stage_step, step_recipients
from alerts.fanout import WHOLE, Share
from alerts.messages import channel_text, email_subject
from alerts.models import AlertState, Contact, Delivery, DeliveryState, Occurrence
from alerts.provider_lookup import found_at_provider, settle_interrupted
from alerts.services import alert_complete_with_outcome, alert_job_aborted, alert_reopen
from scheduler.errors import RetryLater
from scheduler.models import ACTIVE_STATES, Job

ACK_SALT = "alerts.acknowledge"
# A slot this close is used at once: the provider queues a second's worth itself.
SLOT_TOLERANCE_SECONDS = 1.0


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
    # Per retry: seconds until it can help (a full queue, a held slot), or None for the alert's delay.
    retry_after: list[float | None] = field(default_factory=list)
    # The last sent delivery whose outcome is not written yet: written before the next provider call, or
    # with the job's outcome in one commit.
    unrecorded: tuple[Delivery, dict[str, object]] | None = None

    def record_sent(self) -> None:
        if self.unrecorded is not None:
            delivery, values = self.unrecorded
            delivery_rows.record(delivery, DeliveryState.SENT, **values)
            self.unrecorded = None

    def record_sent_with_outcome(self, job) -> None:
        if self.unrecorded is not None:
            delivery, values = self.unrecorded
            job.update_with_outcome(Delivery, delivery_rows.while_claimed(delivery), state=DeliveryState.SENT,
                                    modified_at=timezone.now(), **values)  # fmt: skip
            self.unrecorded = None

    def retry_delay(self) -> timedelta | None:
        """When every pending retry is a matter of seconds, the next attempt comes once the last is over."""
        if self.retry_after and None not in self.retry_after:
            return timedelta(seconds=max(self.retry_after))
        return None

    def as_result(self) -> dict[str, object]:
        return {"sent": self.sent, "skipped": self.skipped, "failed": self.failed, "unknown": self.unknown,
                "via_sink": self.via_sink}  # fmt: skip


def acknowledgement_url(*, alert_id: int, contact_id: int, occurrence_id: int | None = None) -> str:
    """The signed link; with ``occurrence_id`` (an escalation), it acknowledges that occurrence's walk."""
    payload = {"a": alert_id, "c": contact_id} | ({"o": occurrence_id} if occurrence_id is not None else {})
    token = signing.dumps(payload, salt=ACK_SALT, compress=True)
    return settings.PUBLIC_BASE_URL + reverse("alerts:acknowledge", args=[token])


def delivery_uuid(delivery: Delivery) -> str:
    """The delivery's id for receivers: the same on every attempt, and unlike the row's number, not reused
    by another installation or after the database is recreated."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{settings.PUBLIC_BASE_URL}/deliveries/{delivery.pk}/"
                                              f"{delivery.created_at.isoformat()}"))  # fmt: skip


def _compose(
    delivery: Delivery, occurrence: Occurrence, contact: Contact, channel: str, stage: Stage
) -> tuple[str, Envelope]:
    """The message's body (its text and the acknowledgement link) and its envelope."""
    text = channel_text(occurrence.alert, contact=contact, channel=channel)
    link = acknowledgement_url(
        alert_id=occurrence.alert_id, contact_id=contact.pk, occurrence_id=occurrence.pk if stage else None
    )
    alert = occurrence.alert
    envelope = Envelope(
        delivery_id=delivery_uuid(delivery), alert_id=alert.pk, alert_name=alert.name, urgent=alert.urgent,
        occurrence_id=occurrence.pk, scheduled_for=occurrence.scheduled_for, contact_id=contact.pk,
        contact_name=contact.name, text=text, acknowledge_url=link, signing_secret=contact.webhook_secret,
    )  # fmt: skip
    return f"{text}\n\nAcknowledge: {link}", envelope


def _claim(delivery: Delivery, job_id: int) -> bool:
    return bool(
        Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(
            state=DeliveryState.SENDING, attempts=F("attempts") + 1, job_id=job_id, modified_at=timezone.now()
        )
    )


def occurrence_deliver(
    *,
    job,
    occurrence_id: int,
    channel: str,
    contact_id: int | None = None,
    stage: Stage = NO_STAGE,
    share: Share = WHOLE,
) -> dict[str, object]:
    """Deliver the occurrence to every active recipient on ``channel`` (only ``contact_id``'s, for a fallback
    or an after-quiet-hours job: see ``alerts/channel_health.py``; the recipients of its escalation step for
    a ``stage``: see ``alerts/escalation.py``; those of one ``share``: see ``alerts/fanout.py``); raise to
    retry or fail the job."""
    # A step's recipients are its own, read once the abort checks passed; the others come with the occurrence
    # (a one-contact job's contact alone, not every recipient to pick it from).
    if stage:
        occurrence, recipients = delivery_rows.occurrence_with_recipients(occurrence_id, None)
    elif contact_id is not None:
        occurrence, recipients = delivery_rows.occurrence_with_recipient(occurrence_id, contact_id)
    else:
        occurrence, recipients = delivery_rows.occurrence_with_recipients(occurrence_id, share)
    if occurrence is None:
        job.abort("the occurrence no longer exists (the alert was edited or deleted)")
    alert = occurrence.alert

    def abort(reason: str) -> NoReturn:
        # Nothing of this job is sent: a one-off alert whose last job it was is over (else it stayed active,
        # with nothing left to send), unless a pause stopped it and has been lifted since.
        paused = alert.state == AlertState.PAUSED
        job.after_outcome(lambda: alert_job_aborted(alert=alert, job_id=job.id, paused=paused))
        job.abort(reason)

    # Completed as this job was being added, it was not done without it: judged as active, and made so
    # once nothing else stops the job (alert_reopen).
    completed = alert.state == AlertState.COMPLETED
    if completed:
        alert.state = AlertState.ACTIVE
    # An acknowledged walk says so first: that, not the alert's state, is why its remaining steps stop.
    reason = occurrence.acknowledgement_reason() if stage else None
    reason = reason or alert.abort_reason(timezone.now())
    if reason:
        abort(reason)
    if completed and not alert_reopen(alert=alert):
        abort(f"alert is {alert.state}")
    spec = channels.get(channel)
    if stage:
        recipients = _stage_recipients(abort, alert, stage, channel, contact_id)
    recipients = [c for c in recipients if c.is_active and spec.address(c)]
    if not recipients and share:
        # Contact ids need not spread evenly: a share may be empty, which ends it like a share sent.
        job.summarize(f"{channel}: {share.label} has no active recipient with an address")
        alert_complete_with_outcome(job=job, alert=alert)
        return Tally().as_result()
    if not recipients:
        abort(f"no active recipient with an address for {channel}")
    sender = spec.transport()
    tally = Tally()
    try:
        for number, contact in enumerate(recipients, start=1):
            if number > 1:  # for the first, the job's claim a moment ago was the abort check
                job.progress((number - 1) / len(recipients), f"{channel} to {contact.name}")  # and the check
            subject = email_subject(alert, contact=contact) if channel == "email" else ""
            _deliver_to(job, sender, occurrence, contact, spec, subject, tally, stage)
    except BaseException:
        tally.record_sent()  # what was sent is recorded, whatever stopped the loop (a cancel, an error)
        raise
    if tally.retry:
        tally.record_sent()
        message = f"{len(tally.retry)} delivery(ies) not sent for now: " + "; ".join(tally.retry)[:400]
        raise RetryLater(message, delay=tally.retry_delay())
    if tally.failed and not tally.sent:
        raise DeliveryFailed(f"every {channel} delivery failed for good; see the deliveries")
    summary = f"{channel}: sent {tally.sent}, skipped {tally.skipped}, failed {tally.failed}, unknown {tally.unknown}"
    if tally.waiting:
        summary += f"; {len(tally.waiting)} waiting for quiet hours: " + "; ".join(tally.waiting)[:300]
    if tally.via_sink:
        summary = f"Twilio is not configured: the SMS went to the local sink, not to a phone ({summary})"
    job.summarize(summary)
    if tally.unknown:
        job.needs_attention(f"{tally.unknown} {channel} delivery(ies) may not have gone out: check, resend or settle")
    # The last delivery's outcome is written in the job's own statement (each commit waits for a WAL
    # flush), and so is the alert's completion when this is its last job; of two jobs ending together,
    # neither completes it there, and each decides once its outcome is committed, where the later sees
    # the other's end. A message that may not have gone out leaves the alert waiting for a resend.
    tally.record_sent_with_outcome(job)
    if not tally.unknown:
        alert_complete_with_outcome(job=job, alert=alert)
    return tally.as_result()


def _stage_recipients(
    abort: Callable[[str], NoReturn], alert, stage: Stage, channel: str, contact_id: int | None
) -> list[Contact]:
    step = stage_step(alert, stage)
    if isinstance(step, str):
        abort(step)
    # A one-contact job (a fallback) may use the channel the step does not: that is its point.
    if contact_id is None and channel not in step.channels:
        abort(f"step {stage.step} of the escalation policy no longer sends by {channel}")
    recipients = step_recipients(alert, step)
    return recipients if contact_id is None else [c for c in recipients if c.pk == contact_id]


def _create_claimed(
    job, occurrence: Occurrence, contact: Contact, channel: DeliveryChannel, stage: Stage
) -> Delivery | None:
    """The delivery row, created already claimed; ``None`` if it exists (an earlier attempt made it)."""
    delivery = Delivery(occurrence=occurrence, contact=contact, channel=channel.name, address=channel.address(contact),
                        state=DeliveryState.SENDING, attempts=1, job_id=job.id, **stage.delivery_fields)  # fmt: skip
    return delivery if delivery_rows.insert_unless_exists(delivery) else None


def _deliver_to(job, sender, occurrence, contact, channel, subject, tally: Tally, stage: Stage) -> None:
    held = delivery_hold(job=job, occurrence=occurrence, contact=contact, channel=channel.name, stage=stage)
    if held is not None:
        if held.skipped:
            tally.skipped += 1
        else:
            tally.waiting.append(held.reason)
        return
    # A first attempt creates the rows; later ones find them (or create the rows of new recipients).
    delivery = _create_claimed(job, occurrence, contact, channel, stage) if job.attempt == 1 else None
    created = delivery is not None
    if delivery is None:
        delivery, created = Delivery.objects.get_or_create(
            occurrence=occurrence,
            contact=contact,
            channel=channel.name,
            **stage.delivery_fields,
            defaults={"address": channel.address(contact), "state": DeliveryState.SENDING, "attempts": 1,
                      "job_id": job.id},
        )  # fmt: skip
    if not created and delivery.state == DeliveryState.SENDING:
        if _held_by_another_job(delivery, job.id):
            tally.skipped += 1
            return
        # An earlier attempt claimed it and never recorded the outcome: its worker died before or after the
        # provider call. Only the provider knows which.
        if not settle_interrupted(sender, delivery, occurrence, contact, tally, job_id=job.id):
            return
    elif not created and (delivery.state != DeliveryState.PENDING or not _claim(delivery, job.id)):
        tally.skipped += 1
        return
    started = time.monotonic()
    attempt_started = timezone.now()
    try:
        if delivery.unanswered_since and found_at_provider(sender, delivery, occurrence, contact, tally):
            return
        body, envelope = _compose(delivery, occurrence, contact, channel.name, stage)
        if _held_by_sending_rate(sender, delivery, body, contact, tally):
            return
        tally.record_sent()  # the previous recipient's outcome, before the next provider call
        sent = sender.send(to=delivery.address, body=body, subject=subject, envelope=envelope)
    except DeliveryError as exc:
        if exc.permanent:
            with transaction.atomic():
                delivery_rows.record(
                    delivery, DeliveryState.FAILED, error=str(exc)[:2000], error_code=str(exc.code or "")[:32]
                )
                delivery_failed_for_good(delivery=delivery, code=exc.code)
            tally.failed += 1
        else:
            # Back to pending, so that the next attempt sends it; the job's retry policy decides when. After a
            # timeout the provider is asked about this attempt: an earlier one's message, looked for before this
            # send, was not there.
            unanswered = attempt_started if exc.code == "read-timeout" else delivery.unanswered_since
            delivery_rows.record(
                delivery,
                DeliveryState.PENDING,
                error=str(exc)[:2000],
                error_code=str(exc.code or "")[:32],
                unanswered_since=unanswered,
            )
            tally.retry.append(f"{contact.name}: {exc}")
            tally.retry_after.append(exc.retry_after)
        return
    tally.unrecorded = (delivery, {
        "provider_id": sent.provider_id, "error": "", "unanswered_since": None, "send_after": None,
        "note": (sent.note or f"sent in {time.monotonic() - started:.2f}s")[:200],
    })  # fmt: skip
    tally.sent += 1
    tally.via_sink = tally.via_sink or sent.via_sink


def _held_by_another_job(delivery: Delivery, job_id: int) -> bool:
    """Whether another job that is not over claimed the delivery: it may be sending it this moment, and if
    its worker died, that job's own next attempt settles it. (Two jobs meet on one recipient when an
    occurrence was planned again with its recipients shared differently.)"""
    if delivery.job_id in (None, job_id):
        return False
    return Job.objects.filter(pk=delivery.job_id, state__in=ACTIVE_STATES).exists()


def _held_by_sending_rate(sender, delivery: Delivery, body: str, contact: Contact, tally: Tally) -> bool:
    """Whether the channel's own sending rate holds this message back; if so, its job comes back then.

    Never a sleep: a worker waiting out a slot is a worker not sending anything else. The slot is kept
    on the delivery (``send_after``), so the next attempt sends without queueing again.
    """
    now = timezone.now()
    if delivery.send_after is not None:
        wait = (delivery.send_after - now).total_seconds()
    else:
        wait = sender.reserve(body=body)
    if wait <= SLOT_TOLERANCE_SECONDS:
        return False
    send_after = delivery.send_after or now + timedelta(seconds=wait)
    delivery_rows.record(
        delivery, DeliveryState.PENDING, send_after=send_after, note="held back by SMS_PER_SECOND_PER_NUMBER"
    )
    tally.retry.append(f"{contact.name}: held back by the sending rate until {send_after:%H:%M:%S} UTC")
    tally.retry_after.append(wait)
    return True
