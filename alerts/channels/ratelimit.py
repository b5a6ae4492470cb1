"""A sending rate per sending number, in message segments, that holds across every worker and machine.

Off by default: Twilio queues a sender's messages above its rate itself (a long code sends about one
segment a second; the queue holds hours), and ``SMS_VALIDITY_PERIOD_SECONDS`` lets a reminder that cannot
leave in time expire there. Where a limit of our own is wanted (a Twilio-compatible provider without a
queue), a per-worker limit would multiply with the number of workers, so the schedule lives in the
database every worker already shares: one ``SendSlot`` row per sender holding the next free moment.
Reserving a slot moves that moment forward by the message's segments under a row lock, so two workers
can never be handed the same slot. Nobody waits for a slot: the delivery keeps it and its job comes back
then (``alerts.delivery``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone


def _database_now() -> datetime:
    """The current time on the database's clock, so workers on machines with skewed clocks agree.

    On PostgreSQL ``clock_timestamp()`` (not ``now()``, which is frozen at the start of the transaction
    and would be stale by however long we waited for the row lock). SQLite runs on this machine, so its
    clock is ours.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]
    return timezone.now()


# GSM 03.38: the basic character set (one septet each) and its extension table (an escape and one more).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def sms_segments(body: str) -> int:
    """How many segments an SMS costs: GSM-7 160 septets alone, 153 per part; otherwise UCS-2, 70 / 67.

    A single character outside GSM-7 (an emoji, a curly quote) turns the whole message into UCS-2.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in body):
        units, single, part = sum(2 if char in GSM7_EXTENDED else 1 for char in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // part)


def reserve_send_slot(sender: str, *, per_second: float, segments: int = 1) -> float:
    """Reserve the next sending slot of ``sender`` for ``segments``; return the seconds until it starts.

    Consecutive reservations, from any process, are ``segments / per_second`` seconds apart. A slot is
    consumed even if the caller then does not send: the cost is one idle slot, never two sends at once.
    """
    if per_second <= 0:
        raise ValueError(f"per_second must be positive, not {per_second}")
    if segments < 1:
        raise ValueError(f"segments must be at least 1, not {segments}")
    # Imported here, so that importing the channels never needs the app registry to be ready.
    from alerts.models import SendSlot

    interval = timedelta(seconds=segments / per_second)
    # A short transaction of its own, committed before the provider is called: the lock is held for
    # milliseconds. On SQLite select_for_update() is a no-op, but the database runs
    # transactions as BEGIN IMMEDIATE (see config/settings.py), which takes the database's write lock at
    # the start: the reservations are serialised just the same.
    with transaction.atomic():
        # get_or_create on a select_for_update queryset: if two workers create the first row at once, the
        # loser's INSERT fails on the unique sender and it re-reads (and locks) the winner's row.
        slot_row, _ = SendSlot.objects.select_for_update().get_or_create(
            sender=sender, defaults={"next_free_at": _database_now()}
        )
        now = _database_now()
        slot = max(slot_row.next_free_at, now)
        slot_row.next_free_at = slot + interval
        slot_row.save(update_fields=["next_free_at"])
    return (slot - now).total_seconds()
