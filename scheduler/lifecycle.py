"""The one place where a job changes state.

Every change is a conditional UPDATE (``WHERE id = ? AND state IN (...)``) plus an event in the job's
timeline, in one transaction. A caller names the states it expects the job to be in; asking for a move
the lifecycle does not allow raises ``IllegalTransition`` (a bug), while finding the row in another
state than expected returns ``False`` (a race that someone else won, e.g. a cancel before a claim).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from scheduler.models import EventKind, Job, JobEvent, State

TRANSITIONS: dict[State, frozenset[State]] = {
    State.SCHEDULED: frozenset({State.QUEUED, State.CANCELLED}),
    # QUEUED -> SCHEDULED: publishing failed, the dispatcher tries again; QUEUED -> QUEUED: republished.
    State.QUEUED: frozenset({State.QUEUED, State.SCHEDULED, State.RUNNING, State.CANCELLED}),
    State.RETRYING: frozenset({State.RETRYING, State.RUNNING, State.CANCELLED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.RETRYING, State.ABORTED, State.CANCELLED}),
    # A failed job can be given one more attempt by an operator.
    State.FAILED: frozenset({State.SCHEDULED}),
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
    **changes: Any,
) -> bool:
    """Move job ``job_id`` from one of ``sources`` to ``target``; return whether the row changed.

    ``when`` adds conditions to the UPDATE (e.g. the claiming message's task id); ``changes`` are
    further columns to set, values or expressions.
    """
    sources = tuple(sources)
    check_transition(sources, target)
    now = now or timezone.now()
    with transaction.atomic():
        updated = Job.objects.filter(pk=job_id, state__in=sources, **(when or {})).update(
            state=target, modified_at=now, **changes
        )
        if updated and event is not None:
            JobEvent.objects.create(job_id=job_id, kind=event, at=now, hostname=hostname, message=message[:500])
    return bool(updated)


def record_event(job_id: int, kind: EventKind, *, hostname: str = "", message: str = "") -> None:
    """Append an event that does not change the state (a receipt, a stop at an abort check)."""
    JobEvent.objects.create(job_id=job_id, kind=kind, hostname=hostname, message=message[:500])
