"""The SMS rate limit per sending number, shared through the database by every worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts.channels import reserve_send_slot
from alerts.channels.ratelimit import sms_segments

# Ten seconds between slots: far longer than the test takes, so every reservation lands on the schedule
# (none finds the schedule already in the past) even on a slow machine.
PER_SECOND = 0.1
INTERVAL = 1 / PER_SECOND


@pytest.mark.django_db
def test_consecutive_reservations_are_one_interval_apart():
    from alerts.models import SendSlot

    waits = [reserve_send_slot("+15005550006", per_second=PER_SECOND) for _ in range(3)]

    assert waits[0] == 0
    assert INTERVAL - 2 < waits[1] <= INTERVAL
    assert 2 * INTERVAL - 2 < waits[2] <= 2 * INTERVAL
    # The row holds the slot after the last one reserved.
    free_in = (SendSlot.objects.get(sender="+15005550006").next_free_at - timezone.now()).total_seconds()
    assert 3 * INTERVAL - 2 < free_in <= 3 * INTERVAL


@pytest.mark.django_db
def test_each_sending_number_has_its_own_schedule():
    assert reserve_send_slot("+15005550006", per_second=PER_SECOND) == 0
    assert reserve_send_slot("+15005550007", per_second=PER_SECOND) == 0
    assert reserve_send_slot("+15005550006", per_second=PER_SECOND) > 0


@pytest.mark.django_db
def test_a_slot_in_the_past_is_not_reused():
    """After a quiet spell the next send goes at once, and the one after it waits a full interval."""
    from alerts.models import SendSlot

    SendSlot.objects.create(sender="+15005550006", next_free_at=timezone.now() - timedelta(hours=1))

    assert reserve_send_slot("+15005550006", per_second=PER_SECOND) == 0
    assert INTERVAL - 2 < reserve_send_slot("+15005550006", per_second=PER_SECOND) <= INTERVAL


@pytest.mark.django_db(transaction=True)
def test_two_workers_reserving_at_once_never_share_a_slot():
    """Two threads, each with its own database connection, race from the first reservation on (the row
    does not exist yet, so both try to create it)."""
    per_thread = 5
    barrier = threading.Barrier(2)
    waits: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(per_thread):
                wait = reserve_send_slot("+15005550006", per_second=PER_SECOND)
                with lock:
                    waits.append(wait)
        except BaseException as exc:  # reported by the test thread below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection; the test database must outlive none

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started

    assert not errors, errors
    assert len(waits) == 2 * per_thread
    # Reservation k is at first + k * INTERVAL, and its wait is that minus the moment it was made: sorted,
    # the waits step by one interval, less however long the reservations took between them.
    waits.sort()
    assert waits[0] == 0
    steps = [later - earlier for earlier, later in zip(waits, waits[1:], strict=False)]
    assert all(INTERVAL - elapsed - 0.001 <= step <= INTERVAL + 0.001 for step in steps), (steps, elapsed)


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # the extension table: two septets each
        ("€" * 81, 2),
        ("é" * 160, 1),  # in GSM-7's basic set
        ("ą" * 70, 1),  # not in GSM-7: UCS-2
        ("ą" * 71, 2),
        ("a" * 133 + "ą", 2),  # one character outside GSM-7 makes the whole message UCS-2
        ("😀" * 35, 1),  # two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_segments_are_counted_as_the_network_counts_them(body, segments):
    assert sms_segments(body) == segments


@pytest.mark.django_db
def test_a_longer_message_reserves_a_longer_slot():
    assert reserve_send_slot("+15005550006", per_second=PER_SECOND, segments=3) == 0
    assert 3 * INTERVAL - 2 < reserve_send_slot("+15005550006", per_second=PER_SECOND) <= 3 * INTERVAL
