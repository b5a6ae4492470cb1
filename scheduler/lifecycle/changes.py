"""The core of every change of a job's state: the allowed moves, and one conditional UPDATE with its event.

``transition`` moves a job from one of the states it is expected in to another, in one statement with its
event on PostgreSQL; the named changes of this package are made of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from scheduler.models import EventKind, Job, JobEvent, State
from scheduler.statements import columns, from_row, plain_update_sql, update_sql


@dataclass(eq=False)
class RowsUpdate:
    """Other rows' update written with a job's change: ``model.objects.filter(**filters).update(**values)``,
    or an UPDATE written out (``sql`` with ``params``, for a condition the ORM is slow to compile).

    ``changed``: how many rows it changed, once written (``None`` until then, and in a change read back,
    whose statement returns the job's row alone).
    """

    model: type[models.Model] | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    sql: str = ""
    params: Sequence[Any] = ()
    changed: int | None = None

    def statement(self) -> tuple[str, Sequence[Any]]:
        """The UPDATE with its parameters: a model's written out where it is plain (a tenth of the ORM's
        compile), compiled by Django where it is not."""
        if self.sql:
            return self.sql, self.params
        return plain_update_sql(self.model, self.filters, self.values) or update_sql(
            self.model.objects.filter(**self.filters), self.values
        )

    def run(self) -> None:
        """On its own, in the caller's transaction (SQLite's path)."""
        with connection.cursor() as cursor:
            cursor.execute(*self.statement())
            self.changed = cursor.rowcount


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
    # Its owner gives it another attempt once what stopped it no longer holds (e.g. its alert was resumed).
    State.ABORTED: frozenset({State.SCHEDULED}),
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
    further columns to set, values or expressions. ``with_updates`` are other rows' updates committed with
    the change, whether or not the job's row changed; each learns how many rows it changed.
    """
    return move(job_id, sources=sources, target=target, event=event, hostname=hostname, message=message,
                 when=when, now=now, read_back=False, with_updates=with_updates, **changes)  # fmt: skip


def move(
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
        others = [other.statement() for other in with_updates]
        update, params = RowsUpdate(Job, filters, values).statement()
        returning = columns(Job, connection.alias) if read_back else "id"
        statement = (
            "WITH " + "".join(f"written_{i} AS ({other} RETURNING 1), " for i, (other, _) in enumerate(others))
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
            counts = "".join(f", (SELECT COUNT(*) FROM written_{i})" for i in range(len(others)))
            cursor.execute(statement + f"SELECT (SELECT COUNT(*) FROM changed){counts}", params)
            updated, *written = cursor.fetchone()
            for other, count in zip(with_updates, written, strict=True):
                other.changed = count
            return updated > 0
    # Inside a caller's transaction (an outcome written with the body's own records) no savepoint is
    # needed: a failure here fails the whole commit anyway.
    with transaction.atomic(savepoint=False):
        for other in with_updates:
            other.run()
        updated = Job.objects.filter(**filters).update(**values)
        if updated and event is not None:
            JobEvent.objects.create(job_id=job_id, kind=event, at=now, hostname=hostname, message=message)
        if read_back:
            return Job.objects.get(pk=job_id) if updated else None
    return bool(updated)


def record_event(job_id: int, kind: EventKind, *, hostname: str = "", message: str = "") -> None:
    """Append an event that does not change the state (a receipt, a stop at an abort check)."""
    JobEvent.objects.create(job_id=job_id, kind=kind, hostname=hostname, message=message[:500])
