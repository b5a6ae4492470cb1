"""The one place where a job changes state.

Every change is a conditional UPDATE (``WHERE id = ? AND state IN (...)``) plus an event in the job's
timeline, in one transaction. A caller names the states it expects the job to be in; asking for a move
the lifecycle does not allow raises ``IllegalTransition`` (a bug), while finding the row in another
state than expected returns ``False`` (a race that someone else won, e.g. a cancel before a claim).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from scheduler.models import EventKind, Job, JobEvent, State

MAX_TRACEBACK_CHARS = 20_000

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


def error_record(exc: BaseException, *, attempt: int, retryable: bool, now: datetime) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc)[:2000],
        "traceback": "".join(traceback.format_exception(exc))[-MAX_TRACEBACK_CHARS:],
        "retryable": retryable,
        "at": now.isoformat(),
    }


@dataclass(frozen=True)
class Decision:
    retry: bool
    eta: datetime | None = None
    reason: str = ""


class RetryPolicy:
    """Whether a failed attempt gets another, and when: asked by the worker and by the recovery sweep.

    The attempt count and the delay are the job's own (``max_attempts``, ``retry_delay``, set per task
    and per enqueue). An attempt whose worker died did not fail on its merits, so the next one starts at
    once; any other retryable failure waits the job's delay (``backoff``, the hook for a growing delay).
    """

    def backoff(self, job: Job) -> timedelta:
        return job.retry_delay

    def decide(self, job: Job, *, retryable: bool, now: datetime, worker_lost: bool = False) -> Decision:
        if not retryable:
            return Decision(False, reason="permanent error")
        if job.attempts >= job.max_attempts:
            return Decision(False, reason=f"attempt {job.attempts} was the last")
        return Decision(True, eta=now if worker_lost else now + self.backoff(job))


retry_policy = RetryPolicy()


def rescue(job: Job, error: BaseException, *, now: datetime) -> State | None:
    """A running job whose worker died (lease expired): retry at once if the policy allows, else fail.

    Returns the state it moved to, ``None`` if the attempt changed hands meanwhile.
    """
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
