"""An attempt's changes: its claim by the message that runs it, and its outcome (or the sweep's rescue)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from scheduler.lifecycle.changes import RowsUpdate, check_transition, move, transition
from scheduler.models import EventKind, Job, JobEvent, State
from scheduler.retry import error_record, retry_policy
from scheduler.statements import columns, from_row


def claim(job_id: int, *, task_id: str, hostname: str, lease: timedelta, now: datetime | None = None) -> Job | None:
    """``queued``/``retrying`` -> ``running``, only for the message of the current attempt (its task id);
    returns the claimed job, ``None`` if this message may not start it.

    PostgreSQL: one statement, the UPDATE returning the row with its ``started`` event's INSERT: one round
    trip instead of five (the change, its event, the commit, then reading the row).
    """
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_claim_sql(connection.alias), {
                "running": State.RUNNING, "now": now, "hostname": hostname, "lease": now + lease, "job_id": job_id,
                "queued": State.QUEUED, "retrying": State.RETRYING, "task_id": task_id, "started": EventKind.STARTED,
            })  # fmt: skip
            row = cursor.fetchone()
        return None if row is None else from_row(Job, row)
    return move(
        job_id, sources=(State.QUEUED, State.RETRYING), target=State.RUNNING, event=EventKind.STARTED,
        hostname=hostname, message="", when={"celery_task_id": task_id, "published_at__isnull": False}, now=now,
        read_back=True, attempts=F("attempts") + 1, started_at=now, finished_at=None, worker=hostname,
        lease_expires_at=now + lease, progress=None, status_message="",
    )  # fmt: skip


@functools.cache
def _claim_sql(alias: str) -> str:
    """The claim on PostgreSQL, written out once: the conditional UPDATE that ``move`` would compile on
    every claim (the most frequent statement of all), its ``started`` event, the row read back."""
    check_transition((State.QUEUED, State.RETRYING), State.RUNNING)
    return f"""
        WITH changed AS (
            UPDATE {Job._meta.db_table} SET state = %(running)s, modified_at = %(now)s, attempts = attempts + 1,
                started_at = %(now)s, finished_at = NULL, worker = %(hostname)s, lease_expires_at = %(lease)s,
                progress = NULL, status_message = ''
            WHERE id = %(job_id)s AND state IN (%(queued)s, %(retrying)s) AND celery_task_id = %(task_id)s
                AND published_at IS NOT NULL
            RETURNING {columns(Job, alias)}
        ), event AS (
            INSERT INTO {JobEvent._meta.db_table} (job_id, kind, at, hostname, message)
            SELECT id, %(started)s, %(now)s, %(hostname)s, '' FROM changed
        )
        SELECT * FROM changed"""


def _end_attempt(
    job_id: int,
    target: State,
    event: EventKind,
    *,
    task_id: str,
    hostname: str,
    message: str,
    runtime: float,
    now: datetime | None = None,
    **changes: Any,
) -> bool:
    return transition(
        job_id,
        sources=(State.RUNNING,),
        target=target,
        event=event,
        hostname=hostname,
        message=message,
        when={"celery_task_id": task_id},
        now=now,
        runtime=timedelta(seconds=runtime),
        lease_expires_at=None,
        **changes,
    )


def succeed(
    job_id: int,
    *,
    task_id: str,
    hostname: str,
    result: Any,
    runtime: float,
    summary: str = "",
    with_updates: Sequence[RowsUpdate] = (),
) -> bool:
    changes = {"status_message": summary} if summary else {}
    return _end_attempt(
        job_id,
        State.SUCCEEDED,
        EventKind.SUCCEEDED,
        task_id=task_id,
        hostname=hostname,
        message="",
        runtime=runtime,
        result=result,
        finished_at=timezone.now(),
        progress=1.0,
        with_updates=with_updates,
        **changes,
    )


def need_attention(
    job_id: int,
    *,
    task_id: str,
    hostname: str,
    result: Any,
    reason: str,
    runtime: float,
    summary: str = "",
    with_updates: Sequence[RowsUpdate] = (),
) -> bool:
    """The body ended without an error but its work is not known to be done: an operator decides."""
    return _end_attempt(
        job_id,
        State.ATTENTION,
        EventKind.ATTENTION,
        task_id=task_id,
        hostname=hostname,
        message=reason,
        runtime=runtime,
        result=result,
        finished_at=timezone.now(),
        progress=1.0,
        status_message=f"{reason} ({summary})"[:500] if summary else reason[:500],
        with_updates=with_updates,
    )


def abort(job_id: int, *, task_id: str, hostname: str, reason: str, runtime: float) -> bool:
    return _end_attempt(
        job_id,
        State.ABORTED,
        EventKind.ABORTED,
        task_id=task_id,
        hostname=hostname,
        message=reason,
        runtime=runtime,
        status_message=reason[:500],
        finished_at=timezone.now(),
    )


def fail_attempt(
    job: Job,
    exc: BaseException,
    *,
    task_id: str,
    hostname: str,
    retryable: bool,
    runtime: float,
    worker_lost: bool = False,
) -> State | None:
    """Record a failed attempt; ``retry_policy`` decides between ``retrying`` and ``failed``. ``worker_lost``:
    the attempt ended because its worker process is going away (SIGTERM), not on its merits.

    Returns the state it moved to, ``None`` if the attempt no longer owned the job.
    """
    now = timezone.now()
    errors = [*job.errors, error_record(exc, attempt=job.attempts, retryable=retryable, now=now)]
    summary = f"{type(exc).__name__}: {exc}"[:500]
    decision = retry_policy.decide(
        job, retryable=retryable, now=now, worker_lost=worker_lost, delay=getattr(exc, "delay", None)
    )
    common = {"task_id": task_id, "hostname": hostname, "runtime": runtime, "now": now, "errors": errors}
    if decision.retry:
        changed = _end_attempt(
            job.pk,
            State.RETRYING,
            EventKind.RETRIED,
            message=(
                f"attempt {job.attempts} of {job.max_attempts} failed; next at {decision.eta:%Y-%m-%d %H:%M:%S} UTC"
            ),
            eta=decision.eta,
            published_at=None,
            status_message=summary,
            **common,
        )
        return State.RETRYING if changed else None
    changed = _end_attempt(
        job.pk,
        State.FAILED,
        EventKind.FAILED,
        message=f"{decision.reason}: {summary}",
        finished_at=now,
        status_message=summary,
        **common,
    )
    return State.FAILED if changed else None


def rescue(job: Job, error: BaseException, *, now: datetime) -> State | None:
    """A running job whose worker died (lease expired): another attempt at once if the policy allows,
    else ``failed``. Returns the state it moved to, ``None`` if the attempt changed hands meanwhile."""
    decision = retry_policy.decide(job, retryable=True, now=now, worker_lost=True)
    errors = [*job.errors, error_record(error, attempt=job.attempts, retryable=True, now=now)]
    common = {
        "when": {"celery_task_id": job.celery_task_id},
        "now": now,
        "errors": errors,
        "lease_expires_at": None,
        "status_message": str(error)[:500],
    }
    if decision.retry:
        changed = transition(
            job.pk,
            sources=(State.RUNNING,),
            target=State.RETRYING,
            event=EventKind.RECOVERED,
            message=f"{error}; attempt {job.attempts + 1} follows",
            eta=decision.eta,
            published_at=None,
            **common,
        )
        return State.RETRYING if changed else None
    changed = transition(
        job.pk,
        sources=(State.RUNNING,),
        target=State.FAILED,
        event=EventKind.FAILED,
        message=f"{error}; that was the last attempt",
        finished_at=now,
        **common,
    )
    return State.FAILED if changed else None
