"""Whether the provider already has a message: asked before sending again after an answer that never came
(a read timeout) or a worker that died between claiming a delivery and recording it. Found, the delivery
is recorded as sent with the provider's id; never a blind resend, which could duplicate."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

from alerts.channels.base import DeliveryError
from alerts.delivery_rows import record, while_claimed
from alerts.messages import channel_text
from alerts.models import Contact, Delivery, DeliveryState, Occurrence

if TYPE_CHECKING:
    from alerts.delivery import Tally


def settle_interrupted(
    sender, delivery: Delivery, occurrence: Occurrence, contact: Contact, tally: Tally, *, job_id: int
) -> bool:
    """Settle a delivery left ``sending`` by a dead worker; ``True`` if it must be sent (by this attempt).

    Found at the provider: sent, with its id. Provably absent: sent now, once. The provider cannot be
    asked: the job tries again later, the row stays ``sending``; never a blind send, which could
    duplicate. A channel that cannot be asked at all (email) marks it ``unknown`` for an operator.
    """
    if not sender.can_find_sent:
        # Kept with this job, whose page an operator resends it from (alerts/signals.py).
        record(
            delivery, DeliveryState.UNKNOWN, error="the worker stopped between claiming and recording", job_id=job_id
        )
        tally.unknown += 1
        return False
    try:
        # The row's last change is its claim: the attempt that claimed it began then.
        found = _provider_id_of(sender, delivery, occurrence, contact, attempt_started=delivery.modified_at)
    except DeliveryError as exc:
        tally.retry.append(f"{contact.name}: a send cut short by a stopped worker, not settled: {exc}")
        tally.retry_after.append(exc.retry_after)
        return False
    if found is None:
        if _claim_again(delivery):
            return True
        tally.skipped += 1  # settled by another attempt meanwhile
        return False
    record(
        delivery, DeliveryState.SENT, provider_id=found, error="", unanswered_since=None,
        note="the provider had it from an attempt whose worker stopped; not sent again",
    )  # fmt: skip
    tally.sent += 1
    return False


def _claim_again(delivery: Delivery) -> bool:
    """Date the claim of a delivery left ``sending`` from this attempt, which sends it: if this worker dies
    too, the next attempt looks for this send's message, not for the dead one's (which it knows is absent)."""
    return bool(Delivery.objects.filter(**while_claimed(delivery)).update(modified_at=timezone.now()))


def _provider_id_of(
    sender, delivery: Delivery, occurrence: Occurrence, contact: Contact, *, attempt_started: datetime
) -> str | None:
    """The provider's id for the message that the attempt begun at ``attempt_started`` may have handed it.

    Never an id another delivery recorded: two alerts with the same text, or two rounds of an escalation,
    can reach one number within an attempt's time, and a message taken by both is one of them lost.
    """
    found = sender.find_sent(
        to=delivery.address,
        body_start=channel_text(occurrence.alert, contact=contact, channel=delivery.channel),
        attempt_started=attempt_started,
    )
    if not found:
        return None
    recorded = set(
        Delivery.objects.filter(provider_id__in=found).exclude(pk=delivery.pk).values_list("provider_id", flat=True)
    )
    return next((provider_id for provider_id in found if provider_id not in recorded), None)


def found_at_provider(sender, delivery: Delivery, occurrence: Occurrence, contact: Contact, tally: Tally) -> bool:
    """After a send that got no answer, ask the provider whether it took the message before resending."""
    found = _provider_id_of(sender, delivery, occurrence, contact, attempt_started=delivery.unanswered_since)
    if found is None:
        return False
    record(
        delivery,
        DeliveryState.SENT,
        provider_id=found,
        error="",
        unanswered_since=None,
        note="the provider had accepted it despite the timeout; not sent again",
    )
    tally.sent += 1
    return True
