"""The one place where a job changes state: named changes, single and bulk, each with its event.

No other module writes ``Job.state`` (a test reads the source to keep it so). Each change is a
conditional UPDATE (``WHERE id = ? AND state IN (...)``, plus the attempt's task id where an attempt
owns the job) and an event in the job's timeline, in one transaction. Asking for a move the lifecycle
does not allow raises ``IllegalTransition`` (a bug); finding the row in another state than expected
returns ``False`` (a race that someone else won, e.g. a cancel before a claim).

Changes: ``claim``; an attempt's outcome ``succeed``, ``need_attention``, ``abort``, ``retry``, ``fail``
(``retry_policy`` decides between the last two, for the worker and for the sweep's ``rescue``);
``cancel`` and ``cancel_all``; publishing's ``mark_published``, ``mark_new_published``, ``mark_unpublished``;
an operator's ``requeue`` (one more attempt) and ``settle``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from scheduler.models import ACTIVE_STATES, EventKind, Job, JobEvent, State
from scheduler.retry import error_record, retry_policy
from scheduler.statements import columns, from_row, plain_update_sql, update_sql

# Another row's update written with a job's change: ``model.objects.filter(**filters).update(**values)``.
RowsUpdate = tuple[type[models.Model], dict[str, Any], dict[str, Any]]

TRANSITIONS: dict[State, frozenset[State]] = {
    State.SCHEDULED: frozenset({State.QUEUED, State.CANCELLED}),
    # QUEUED -> SCHEDULED: publishing failed, the dispatcher tries again; QUEUED -> QUEUED: republished.
    State.QUEUED: frozenset({State.QUEUED, State.SCHEDULED, State.RUNNING, State.CANCELLED}),
    State.RETRYING: frozenset({State.RETRYING, State.RUNNING, State.CANCELLED}),
    State.RUNNING: frozenset(
        {State.SUCCEEDED, State.FAILED, State.RETRYING, State.ABORTED, State.CANCELLED, State.ATTENTION}
    ),
    # A failed job can be given one more attempt by an operator.
    State.FAILED: frozenset({State.SCHEDULED}),
    # An operator resends it (one more attempt) or marks it settled.
    State.ATTENTION: frozenset({State.SCHEDULED, State.SUCCEEDED}),
    State.SUCCEEDED: frozenset(),
    State.CANCELLED: frozenset(),
    State.ABORTED: frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, source: str, target: str) -> None:
        super().__init__(f"a job cannot go from {source} to {target}")
        self.source = source
        self.target = target


def check_transition(sources: Iterable[str], target: str) -> None:
    for source in sources:
        if State(target) not in TRANSITIONS[State(source)]:
            raise IllegalTransition(source, target)


def transition(
    job_id: int,
    *,
    sources: Iterable[str],
    target: str,
    event: EventKind | None,
    hostname: str = "",
    message: str = "",
    when: dict[str, Any] | None = None,
    now: datetime | None = None,
    with_updates: Sequence[RowsUpdate] = (),
    **changes: Any,
) -> bool:
    """Move job ``job_id`` from one of ``sources`` to ``target``; return whether the row changed.

    ``when`` adds conditions to the UPDATE (e.g. the claiming message's task id); ``changes`` are
    further columns to set, values or expressions. ``with_updates`` are other rows' updates (a model, its
    filters and the values) committed with the change, whether or not the job's row changed.
    """
    return _move(job_id, sources=sources, target=target, event=event, hostname=hostname, message=message,
                 when=when, now=now, read_back=False, with_updates=with_updates, **changes)  # fmt: skip


def _move(
    job_id: int,
    *,
    sources: Iterable[str],
    target: str,
    event: EventKind | None,
    hostname: str,
    message: str,
    when: dict[str, Any] | None,
    now: datetime | None,
    read_back: bool,
    with_updates: Sequence[RowsUpdate] = (),
    **changes: Any,
) -> Any:
    """``transition``'s work; with ``read_back``, returns the changed job (``None`` if the row did not
    change) instead of whether it changed.

    PostgreSQL: the conditional UPDATE (the one ``QuerySet.update`` would run, written out by
    ``plain_update_sql`` where its values are plain, else compiled by Django), its event's INSERT and
    ``with_updates`` as one statement, one round trip and one commit instead of a transaction of several,
    the row read back from its ``RETURNING``. SQLite: the same in one transaction.
    """
    sources = tuple(sources)
    check_transition(sources, target)
    now = now or timezone.now()
    filters = {"pk": job_id, "state__in": sources, **(when or {})}
    values = {"state": target, "modified_at": now, **changes}
    if event is None and not read_back and not with_updates:
        return bool(Job.objects.filter(**filters).update(**values))
    message = message[:500]
    if connection.vendor == "postgresql" and event is not None:
        others = [_update_sql(*other) for other in with_updates]
        update, params = _update_sql(Job, filters, values)
        returning = columns(Job, connection.alias) if read_back else "id"
        statement = (
            "WITH " + "".join(f"written_{i} AS ({other}), " for i, (other, _) in enumerate(others))
            + f"changed AS ({update} RETURNING {returning}), "
            f"event AS (INSERT INTO {JobEvent._meta.db_table} (job_id, kind, at, hostname, message) "
            "SELECT id, %s, %s, %s, %s FROM changed) "
        )  # fmt: skip
        params = [*(p for _, other_params in others for p in other_params), *params, event, now, hostname, message]
        with connection.cursor() as cursor:
            if read_back:
                cursor.execute(statement + "SELECT * FROM changed", params)
                row = cursor.fetchone()
                return None if row is None else from_row(Job, row)
            cursor.execute(statement + "SELECT COUNT(*) FROM changed", params)
            return cursor.fetchone()[0] > 0
    # Inside a caller's transaction (an outcome written with the body's own records) no savepoint is
    # needed: a failure here fails the whole commit anyway.
    with transaction.atomic(savepoint=False):
        for model, other_filters, other_values in with_updates:
            model.objects.filter(**other_filters).update(**other_values)
        updated = Job.objects.filter(**filters).update(**values)
        if updated and event is not None:
            JobEvent.objects.create(job_id=job_id, kind=event, at=now, hostname=hostname, message=message)
        if read_back:
            return Job.objects.get(pk=job_id) if updated else None
    return bool(updated)


def _update_sql(model: type[models.Model], filters: dict[str, Any], values: dict[str, Any]) -> tuple[str, Any]:
    """The UPDATE that ``model.objects.filter(**filters).update(**values)`` would run, written out where it is
    plain (a tenth of the ORM's compile), compiled by Django where it is not."""
    return plain_update_sql(model, filters, values) or update_sql(model.objects.filter(**filters), values)


def record_event(job_id: int, kind: EventKind, *, hostname: str = "", message: str = "") -> None:
    """Append an event that does not change the state (a receipt, a stop at an abort check)."""
    JobEvent.objects.create(job_id=job_id, kind=kind, hostname=hostname, message=message[:500])


# --- Claim and outcome of an attempt ---------------------------------------------------------------------


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
    return _move(
        job_id, sources=(State.QUEUED, State.RETRYING), target=State.RUNNING, event=EventKind.STARTED,
        hostname=hostname, message="", when={"celery_task_id": task_id, "published_at__isnull": False}, now=now,
        read_back=True, attempts=F("attempts") + 1, started_at=now, finished_at=None, worker=hostname,
        lease_expires_at=now + lease, progress=None, status_message="",
    )  # fmt: skip


@functools.cache
def _claim_sql(alias: str) -> str:
    """The claim on PostgreSQL, written out once: the conditional UPDATE that ``_move`` would compile on
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
    job: Job, exc: BaseException, *, task_id: str, hostname: str, retryable: bool, runtime: float
) -> State | None:
    """Record a failed attempt; ``retry_policy`` decides between ``retrying`` and ``failed``.

    Returns the state it moved to, ``None`` if the attempt no longer owned the job.
    """
    now = timezone.now()
    errors = [*job.errors, error_record(exc, attempt=job.attempts, retryable=retryable, now=now)]
    summary = f"{type(exc).__name__}: {exc}"[:500]
    decision = retry_policy.decide(job, retryable=retryable, now=now, delay=getattr(exc, "delay", None))
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


# --- Publishing ------------------------------------------------------------------------------------------


def _state_once_published(state: str) -> State:
    return State.QUEUED if state == State.SCHEDULED else State(state)


def mark_published(job: Job, *, task_id: str, now: datetime, message: str, republish: bool = False) -> State | None:
    """Publishing claims ``job`` under a fresh task id (``scheduled`` -> ``queued``; a retry stays
    ``retrying``). A republish must present the lost message's task id. ``None``: someone else did first."""
    target = _state_once_published(job.state)
    when = {"celery_task_id": job.celery_task_id} if republish else {"published_at__isnull": True}
    changed = transition(
        job.pk,
        sources=(job.state,),
        target=target,
        event=EventKind.RECOVERED if republish else EventKind.SENT,
        message=message,
        when=when,
        now=now,
        celery_task_id=task_id,
        published_at=now,
    )
    return target if changed else None


def mark_new_published(job: Job, *, task_id: str, now: datetime, message: str) -> JobEvent:
    """Mark a job about to be inserted as published; return its ``sent`` event, to insert with it."""
    job.state = State.QUEUED
    job.celery_task_id = task_id
    job.published_at = now
    return JobEvent(job=job, kind=EventKind.SENT, at=now, message=message)


def mark_unpublished(job_id: int, *, state: State, task_id: str, message: str) -> bool:
    """Publishing failed: the job waits for the dispatcher again (no event: nothing happened)."""
    return transition(
        job_id,
        sources=(state,),
        target=State.SCHEDULED if state == State.QUEUED else state,
        event=None,
        when={"celery_task_id": task_id},
        published_at=None,
        status_message=message[:500],
    )


# --- Operators -------------------------------------------------------------------------------------------


def cancel(job_id: int, *, reason: str, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return transition(
        job_id,
        sources=ACTIVE_STATES,
        target=State.CANCELLED,
        event=EventKind.CANCELLED,
        message=reason,
        now=now,
        finished_at=now,
        status_message=reason[:500],
        lease_expires_at=None,
    )


def cancel_all(
    *, reason: str, target: tuple[int, str] | None = None, now: datetime | None = None
) -> tuple[int, list[str]]:
    """Cancel every waiting and running job (only those of ``target``, a content type id and an object id,
    if given), each with its ``cancelled`` event; return how many, and the task ids of those whose message
    may be in a broker or a worker (to revoke).

    PostgreSQL: one statement, an ``UPDATE ... RETURNING`` feeding an ``INSERT ... SELECT`` of the events
    (100,000 jobs in about 2 s on two busy cores, where locking, chunked UPDATEs and ORM-built events
    took 9-10 s). SQLite: the same in three statements, which see the same rows because the transaction
    holds SQLite's only write lock.
    """
    now = now or timezone.now()
    job, event = Job._meta.db_table, JobEvent._meta.db_table
    where_params = sorted(ACTIVE_STATES)
    where = f"state IN ({', '.join(['%s'] * len(where_params))})"
    if target is not None:
        where += " AND target_type_id = %s AND target_id = %s"  # the job_target index, as jobs_for_target
        where_params += target
    values = [State.CANCELLED, now, now, reason[:500]]
    update = (
        f"UPDATE {job} SET state = %s, modified_at = %s, finished_at = %s, status_message = %s, "
        f"lease_expires_at = NULL WHERE {where}"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH cancelled AS ({update} RETURNING id, celery_task_id, published_at), "
                f"events AS (INSERT INTO {event} (job_id, kind, at, hostname, message) "
                "SELECT id, %s, %s, '', %s FROM cancelled) "
                "SELECT (SELECT COUNT(*) FROM cancelled), (SELECT COALESCE(array_agg(celery_task_id), '{}') "
                "FROM cancelled WHERE celery_task_id <> '' AND published_at IS NOT NULL)",
                [*values, *where_params, EventKind.CANCELLED, now, reason[:500]],
            )
            count, task_ids = cursor.fetchone()
            return count, list(task_ids)
        cursor.execute(
            f"SELECT celery_task_id FROM {job} WHERE {where} AND celery_task_id <> '' AND published_at IS NOT NULL",
            where_params,
        )
        task_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"INSERT INTO {event} (job_id, kind, at, hostname, message) "
            f"SELECT id, %s, %s, '', %s FROM {job} WHERE {where}",
            [EventKind.CANCELLED, now, reason[:500], *where_params],
        )
        cursor.execute(update, [*values, *where_params])
        return cursor.rowcount, task_ids


def requeue(job: Job, *, message: str, now: datetime | None = None) -> bool:
    """One more attempt for a job that failed or needs attention, due now; its outcome is news again."""
    now = now or timezone.now()
    return transition(
        job.pk,
        sources=(job.state,),
        target=State.SCHEDULED,
        event=EventKind.SCHEDULED,
        message=message,
        now=now,
        eta=now,
        published_at=None,
        max_attempts=job.attempts + 1,
        seen=False,
        finished_at=None,
    )


def settle(job_id: int, *, operator: str, now: datetime | None = None) -> bool:
    """An operator checked a job that needed attention: it ends ``succeeded``."""
    return transition(
        job_id,
        sources=(State.ATTENTION,),
        target=State.SUCCEEDED,
        event=EventKind.SETTLED,
        message=f"settled by {operator}",
        now=now,
        seen=True,
    )
