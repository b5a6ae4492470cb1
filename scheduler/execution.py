"""Running one attempt of a job inside a worker: claim, run the body, record the outcome."""

from __future__ import annotations

import json
import logging
import reprlib
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import timedelta
from typing import Any, NoReturn

from celery.exceptions import SoftTimeLimitExceeded
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from scheduler import lifecycle, publishing
from scheduler.errors import JobAborted, JobCancelled, RetryLater, WorkerTerminated
from scheduler.models import EventKind, Job, State

logger = logging.getLogger(__name__)

# Errors of the worker's situation rather than of the work: another attempt may well succeed.
ALWAYS_RETRYABLE = (RetryLater, SoftTimeLimitExceeded, WorkerTerminated)


class JobContext:
    """What a tracked task's body receives as ``job``: its row, and ways to check, abort and report."""

    def __init__(self, job: Job, *, hostname: str, task_id: str, lease: timedelta) -> None:
        self.row = job
        self.id = job.pk
        self.attempt = job.attempts
        self.max_attempts = job.max_attempts
        self.hostname = hostname
        # This attempt's message: the job is this attempt's while its row holds this id.
        self.task_id = task_id
        self._lease = lease
        self._lease_renewed = time.monotonic()
        self.summary = ""
        self.attention = ""
        self.outcome_writes: list[Callable[[], object]] = []
        self.outcome_updates: list[lifecycle.RowsUpdate] = []
        self.after_outcome_checks: list[Callable[[], object]] = []

    @property
    def target(self) -> Any:
        return self.row.target

    def _mine(self):
        return Job.objects.filter(pk=self.id, state=State.RUNNING, celery_task_id=self.task_id)

    def _renew_lease_if_due(self) -> None:
        if time.monotonic() - self._lease_renewed > self._lease.total_seconds() / 3:
            self._mine().update(lease_expires_at=timezone.now() + self._lease)
            self._lease_renewed = time.monotonic()

    def is_cancelled(self) -> bool:
        """Whether the job was cancelled (or taken from this worker) since it started."""
        return not self._mine().exists()

    def check(self) -> None:
        """The abort check: raise ``JobCancelled`` if the job was cancelled; renews the lease."""
        if self.is_cancelled():
            raise JobCancelled(f"job {self.id} was cancelled")
        self._renew_lease_if_due()

    def abort(self, reason: str) -> NoReturn:
        """End the job as ``aborted``: the work is no longer needed."""
        raise JobAborted(reason)

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Report progress (0.0 to 1.0) and a short status message, shown on the job's page; renews the
        lease and is an abort check too (``JobCancelled``), in the same statement."""
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress must be between 0 and 1, not {fraction}")
        reported = self._mine().update(
            progress=fraction, status_message=message[:500], lease_expires_at=timezone.now() + self._lease
        )
        if not reported:
            raise JobCancelled(f"job {self.id} was cancelled")
        self._lease_renewed = time.monotonic()

    def needs_attention(self, reason: str) -> None:
        """End the job, once the body returns, as needing an operator's attention instead of ``succeeded``.

        For work that ended without an error but is not known to be done (a delivery that may not have
        gone out): the job pages count it until an operator resends it or marks it settled.
        """
        self.attention = reason[:500] or "needs attention"

    def record_with_outcome(self, write: Callable[[], object]) -> None:
        """Have ``write`` run in the transaction that records the job's outcome, once the body returns.

        For the body's last records (a delivery's outcome, its alert's completion): one commit for them and
        the job's state instead of one each. Not run if the body raises: what must be kept then, the body
        writes itself before raising.
        """
        self.outcome_writes.append(write)

    def update_with_outcome(self, model: type[models.Model], filters: dict[str, Any], **values: Any) -> None:
        """``model.objects.filter(**filters).update(**values)`` in the statement that records the job's outcome
        (on PostgreSQL; in its transaction on SQLite), once the body returns: a commit and a round trip fewer
        than ``record_with_outcome``. Not run if the body raises."""
        self.outcome_updates.append(lifecycle.RowsUpdate(model, filters, values))

    def try_with_outcome(self, sql: str, params: Sequence[Any], *, otherwise: Callable[[], object]) -> None:
        """Run the UPDATE ``sql`` in the statement that records the job's outcome, once the body returns; if it
        changes no row there (or the body aborts), run ``otherwise`` once the outcome is committed, as
        ``after_outcome`` does.

        For a decision that reads other jobs' outcomes and mostly holds at once: an alert's completion by its
        last job, without a round trip and a commit of its own. Two jobs ending together each see the other
        still running in their own statement and change nothing; each runs ``otherwise`` after its commit,
        where the later sees the other's end. ``sql`` must not wait for a row lock another transaction holds
        (``FOR UPDATE SKIP LOCKED``): the outcome's statement already holds the job's row.
        """
        update = lifecycle.RowsUpdate(sql=sql, params=params)
        self.outcome_updates.append(update)
        self.after_outcome(lambda: None if update.changed else otherwise())

    def after_outcome(self, check: Callable[[], object]) -> None:
        """Have ``check`` run once the job's outcome is committed, if the body returns or aborts (both end
        the job for good; an error or a cancel does not run it).

        For a decision that reads other jobs' outcomes (an alert is over when its last job is): made in the
        outcome's own transaction, two jobs ending together would each see the other still running.
        """
        self.after_outcome_checks.append(check)

    def summarize(self, message: str) -> None:
        """The status message to show once the job succeeds; written with the outcome, not on its own."""
        self.summary = message[:500]


# How a result that JSON cannot hold is kept: reprlib cuts each level short, and a ``__repr__`` that raises
# gives the type's name instead of an error after the work is done.
_RESULT_REPR = reprlib.Repr()
_RESULT_REPR.maxdict = _RESULT_REPR.maxlist = _RESULT_REPR.maxtuple = 50
_RESULT_REPR.maxset = _RESULT_REPR.maxfrozenset = 50
_RESULT_REPR.maxstring = _RESULT_REPR.maxother = _RESULT_REPR.maxlong = 500
MAX_RESULT_REPR_CHARS = 2_000


def _stored_result(value: Any) -> tuple[Any, str]:
    """The body's return value as its job stores it (JSON, with Django's encoder for times, decimals and
    UUIDs), and ``""``; for a value JSON cannot hold (a set, bytes, a model), ``{"repr": ..., "not_json": why}``
    and why.

    The body's work is done by now (a message sent, its records waiting to be written with the outcome): a
    return value is no reason to fail the job, drop those writes and invite an operator to run it again.
    """
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder)), ""
    except Exception as exc:  # a TypeError mostly; a cycle's ValueError, or whatever an object's str() raises
        why = str(exc)[:200]
        return {"repr": _RESULT_REPR.repr(value)[:MAX_RESULT_REPR_CHARS], "not_json": why}, why


def run(
    job_id: int,
    body: Callable[..., Any],
    *,
    task_id: str,
    hostname: str,
    retry_on: tuple[type[BaseException], ...],
    lease: timedelta,
) -> State | None:
    """Run one attempt of ``job_id``; return the state it ended in, ``None`` if not claimed."""
    # Only the message of the current attempt (its task id) can claim, and only once: a duplicated or
    # stale message, or one for a cancelled job, finds no row to change.
    job = lifecycle.claim(job_id, task_id=task_id, hostname=hostname, lease=lease)
    if job is None:
        logger.info("job %s: message %s claims nothing (cancelled, taken or stale)", job_id, task_id)
        return None
    context = JobContext(job, hostname=hostname, task_id=task_id, lease=lease)
    started = time.monotonic()
    outcome = _Outcome(job, task_id=task_id, hostname=hostname)
    try:
        returned = body(context, *job.args, **job.kwargs)
    except JobAborted as exc:
        state = outcome.aborted(exc.reason, runtime=time.monotonic() - started)
        _run_checks(context)
        return state
    except JobCancelled:
        lifecycle.record_event(job_id, EventKind.REVOKED, hostname=hostname, message="stopped at an abort check")
        return State.CANCELLED
    except SystemExit as exc:
        # billiard turns SIGTERM in a pool process into SystemExit, so that finally blocks and context
        # managers run; record it as this attempt's error before the process exits. Its worker is going
        # away, as a killed one is gone: the next attempt is due at once, as after the sweep's rescue.
        terminated = WorkerTerminated(f"the worker process received SIGTERM (exit code {exc.code})")
        outcome.failed(terminated, retryable=True, runtime=time.monotonic() - started, worker_lost=True)
        raise
    except Exception as exc:
        retryable = isinstance(exc, retry_on + ALWAYS_RETRYABLE)
        return outcome.failed(exc, retryable=retryable, runtime=time.monotonic() - started)
    runtime = time.monotonic() - started
    result, not_json = _stored_result(returned)
    summary = context.summary
    if not_json:
        logger.warning("job %s: its result is not JSON (%s); stored as its repr", job_id, not_json)
        note = f"result stored as its repr: {not_json}"
        summary = (f"{summary} ({note})" if summary else note)[:500]
    # Without writes of its own, the outcome is one statement on PostgreSQL: no transaction around it.
    with transaction.atomic() if context.outcome_writes else nullcontext():
        for write in context.outcome_writes:
            write()
        recorded = {"runtime": runtime, "summary": summary, "with_updates": context.outcome_updates}
        if context.attention:
            state = outcome.needs_attention(result, context.attention, **recorded)
        else:
            state = outcome.succeeded(result, **recorded)
    _run_checks(context)
    return state


def _run_checks(context: JobContext) -> None:
    for check in context.after_outcome_checks:
        check()


class _Outcome:
    """Records how an attempt ended; every write is conditional on the attempt still owning the job."""

    def __init__(self, job: Job, *, task_id: str, hostname: str) -> None:
        self.job = job
        self.owner = {"task_id": task_id, "hostname": hostname}

    def _recorded(self, changed: bool, state: State) -> State | None:
        if not changed:
            logger.info("job %s changed hands while running; its %s outcome is not recorded", self.job.pk, state)
            return None
        return state

    def succeeded(self, result: Any, **recorded: Any) -> State | None:
        changed = lifecycle.succeed(self.job.pk, result=result, **recorded, **self.owner)
        return self._recorded(changed, State.SUCCEEDED)

    def needs_attention(self, result: Any, reason: str, **recorded: Any) -> State | None:
        changed = lifecycle.need_attention(self.job.pk, result=result, reason=reason, **recorded, **self.owner)
        return self._recorded(changed, State.ATTENTION)

    def aborted(self, reason: str, *, runtime: float) -> State | None:
        return self._recorded(lifecycle.abort(self.job.pk, reason=reason, runtime=runtime, **self.owner), State.ABORTED)

    def failed(self, exc: BaseException, *, retryable: bool, runtime: float, worker_lost: bool = False) -> State | None:
        state = lifecycle.fail_attempt(
            self.job, exc, retryable=retryable, runtime=runtime, worker_lost=worker_lost, **self.owner
        )
        if state is None:
            return self._recorded(False, State.FAILED)
        if state == State.RETRYING:
            publishing.publish_if_due(self.job.pk)
        return state
