"""A sending rate per sending number that holds across every worker process and machine.

Twilio long codes accept about one message segment per second; a per-worker limit multiplies with the
number of workers, so the schedule lives in the database every worker already shares: one ``SendSlot``
row per sender holding the next free moment. Reserving a slot moves that moment forward under a row
lock, so two workers can never be handed the same slot.
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


def reserve_send_slot(sender: str, *, per_second: float) -> float:
    """Reserve the next sending slot of ``sender``; return how many seconds to wait before using it.

    Consecutive reservations, from any process, are ``1 / per_second`` seconds apart. A slot is
    consumed even if the caller then does not send: the cost is one idle slot, never two sends at once.
    """
    if per_second <= 0:
        raise ValueError(f"per_second must be positive, not {per_second}")
    # Imported here, so that importing the channels never needs the app registry to be ready.
    from alerts.models import SendSlot

    interval = timedelta(seconds=1 / per_second)
    # A short transaction of its own: the caller sleeps and calls the provider after it has committed, so
    # the lock is held for milliseconds. On SQLite select_for_update() is a no-op, but the database runs
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
