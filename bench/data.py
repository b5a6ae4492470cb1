"""Fixtures (contacts and alerts in bulk) and the service's own paths run over many alerts, in parallel.

Rows that only set the scene are written in bulk; what a figure is about (enqueueing occurrences,
syncing schedules) goes through the service's functions, one alert at a time, spread over processes
when there are many. The helpers that run in those processes import Django inside, so that this module
can be imported before ``django.setup()``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from datetime import datetime

from bench.progress import Progress

PHONE = "+1415555{:04d}"
BATCH = 5000


def contacts(count: int) -> list[int]:
    from alerts.models import Contact

    rows = [Contact(name=f"bench contact {i}", phone=PHONE.format(i % 10000)) for i in range(count)]
    return [c.pk for c in Contact.objects.bulk_create(rows, batch_size=BATCH)]


def alerts(
    count: int,
    *,
    name: Callable[[int], str],
    message: Callable[[int], str],
    contact_ids: Sequence[int],
    schedule_kind: str = "once",
    send_at: Callable[[int], datetime] | None = None,
    crontab: str = "",
    label: str = "",
) -> list[int]:
    """``count`` active SMS alerts, each with one recipient (taken in turn from ``contact_ids``)."""
    from alerts.models import Alert

    through = Alert.recipients.through
    ids: list[int] = []
    with Progress(label or "creating alerts", count) as bar:
        for start in range(0, count, BATCH):
            batch = [
                Alert(
                    name=name(i)[:200],
                    message=message(i),
                    send_sms=True,
                    send_email=False,
                    schedule_kind=schedule_kind,
                    send_at=send_at(i) if send_at else None,
                    crontab=crontab,
                )
                for i in range(start, min(start + BATCH, count))
            ]
            made = [a.pk for a in Alert.objects.bulk_create(batch)]
            through.objects.bulk_create(
                [
                    through(alert_id=pk, contact_id=contact_ids[(start + i) % len(contact_ids)])
                    for i, pk in enumerate(made)
                ]
            )
            ids += made
            bar.update(len(ids))
    return ids


def alert_to_many(count: int, *, name: str) -> int:
    """One active SMS alert to ``count`` new contacts (a reminder to a crowd); returns its id."""
    from alerts.models import Alert

    alert = Alert.objects.create(name=name, message="Reminder for {{ contact.name }}: {{ alert.name }}",
                                 send_sms=True, send_email=False, schedule_kind="once", send_at=None)  # fmt: skip
    through = Alert.recipients.through
    through.objects.bulk_create([through(alert_id=alert.pk, contact_id=pk) for pk in contacts(count)], batch_size=BATCH)
    return alert.pk


# --- Run in worker processes of a pool (or in the benchmark itself for small counts) --------------------


def _init_child() -> None:
    import django

    django.setup()


def enqueue_occurrences(ids: Sequence[int]) -> int:
    """``occurrence_enqueue`` for each alert at its ``send_at``: a job row, published if due soon."""
    from alerts.models import Alert
    from alerts.planner import occurrence_enqueue

    alerts_by_id = Alert.objects.in_bulk(list(ids))
    for pk in ids:
        alert = alerts_by_id[pk]
        occurrence_enqueue(alert=alert, scheduled_for=alert.send_at)
    return len(ids)


def sync_schedules(ids: Sequence[int]) -> int:
    """``alert_schedule_sync`` for each alert, as the admin does after a save."""
    from alerts.models import Alert
    from alerts.services import alert_schedule_sync

    alerts_by_id = Alert.objects.in_bulk(list(ids))
    for pk in ids:
        alert_schedule_sync(alert=alerts_by_id[pk])
    return len(ids)


def run_parallel(
    func: Callable[[Sequence[int]], int],
    ids: Sequence[int],
    *,
    label: str,
    processes: int | None = None,
    chunk: int = 100,
) -> float:
    """Apply ``func`` to ``ids`` in chunks, over ``processes`` spawned processes; return the seconds taken.

    Spawned, not forked: a fork would share this process's database and broker connections.
    """
    import time

    from django.db import connections

    processes = processes or max(2, os.cpu_count() or 2)
    chunks = [list(ids[i : i + chunk]) for i in range(0, len(ids), chunk)]
    started = time.monotonic()
    if len(chunks) <= 2:
        with Progress(label, len(ids)) as bar:
            done = 0
            for part in chunks:
                done += func(part)
                bar.update(done)
        return time.monotonic() - started
    connections.close_all()
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_init_child) as pool, Progress(label, len(ids)) as bar:
        done = 0
        for count in pool.imap_unordered(func, chunks):
            done += count
            bar.update(done)
        pool.close()
        pool.join()
    return time.monotonic() - started


# --- Rows in bulk, in SQL: scenery for the figures about many jobs ---------------------------------------

JOB_COLUMNS = (
    "task_name, label, args, kwargs, queue, state, eta, published_at, celery_task_id, unique_key, attempts, "
    "max_attempts, retry_delay, created_at, modified_at, started_at, finished_at, lease_expires_at, runtime, "
    "worker, status_message, progress, errors, result, seen, target_type_id, target_id"
)


def insert_jobs(select_sql: str, params: dict[str, object]) -> tuple[int, int]:
    """``INSERT INTO scheduler_job (JOB_COLUMNS) <select_sql>``, with a ``scheduled`` event for each new job.

    Returns the first and last id inserted. ``select_sql`` yields the columns in ``JOB_COLUMNS`` order.
    """
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO scheduler_job ({JOB_COLUMNS}) {select_sql} RETURNING id", params)
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "INSERT INTO scheduler_jobevent (job_id, kind, at, hostname, message) "
            "SELECT id, 'scheduled', created_at, '', 'due ' || to_char(eta AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD HH24:MI:SS') || ' UTC' FROM scheduler_job WHERE id BETWEEN %s AND %s",
            [min(ids), max(ids)],
        )
    return min(ids), max(ids)


def analyze(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")
