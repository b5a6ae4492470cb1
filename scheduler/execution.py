"""Running one attempt of a job inside a worker: claim, run the body, record the outcome."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F
from django.utils import timezone

from scheduler import lifecycle, publishing
from scheduler.errors import JobAborted, JobCancelled, RetryLater, WorkerTerminated
from scheduler.models import EventKind, Job, State

logger = logging.getLogger(__name__)

MAX_TRACEBACK_CHARS = 20_000
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
        self._task_id = task_id
        self._lease = lease
        self._lease_renewed = time.monotonic()
        self.summary = ""

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    @property
    def target(self) -> Any:
        return self.row.target

    def _mine(self):
        return Job.objects.filter(pk=self.id, state=State.RUNNING, celery_task_id=self._task_id)

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

    def abort(self, reason: str) -> None:
        """End the job as ``aborted``: the work is no longer needed."""
        raise JobAborted(reason)

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Report progress (0.0 to 1.0) and a short status message, shown on the job's page."""
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress must be between 0 and 1, not {fraction}")
        self._mine().update(
            progress=fraction, status_message=message[:500], lease_expires_at=timezone.now() + self._lease
        )
        self._lease_renewed = time.monotonic()

    def summarize(self, message: str) -> None:
        """The status message to show once the job succeeds; written with the outcome, not on its own."""
        self.summary = message[:500]


def error_record(exc: BaseException, *, attempt: int, retryable: bool, now: datetime) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc)[:2000],
        "traceback": "".join(traceback.format_exception(exc))[-MAX_TRACEBACK_CHARS:],
        "retryable": retryable,
        "at": now.isoformat(),
    }


def _json_result(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def claim(job_id: int, *, task_id: str, hostname: str, lease: timedelta) -> Job | None:
    """Move the job to ``running`` if this message may start it; ``None`` if it may not.

    Only the message of the current attempt (its task id) can claim, and only once: a duplicated or
    stale message, or one for a cancelled job, finds no row to change.
    """
    now = timezone.now()
    claimed = lifecycle.transition(
        job_id,
        sources=(State.QUEUED, State.RETRYING),
        target=State.RUNNING,
        event=EventKind.STARTED,
        hostname=hostname,
        when={"celery_task_id": task_id, "published_at__isnull": False},
        now=now,
        attempts=F("attempts") + 1,
        started_at=now,
        finished_at=None,
        worker=hostname,
        lease_expires_at=now + lease,
        progress=None,
        status_message="",
    )
    if not claimed:
        return None
    return Job.objects.get(pk=job_id)


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
    job = claim(job_id, task_id=task_id, hostname=hostname, lease=lease)
    if job is None:
        logger.info("job %s: message %s claims nothing (cancelled, taken or stale)", job_id, task_id)
        return None
    context = JobContext(job, hostname=hostname, task_id=task_id, lease=lease)
    started = time.monotonic()
    outcome = _Outcome(job, task_id=task_id, hostname=hostname)
    try:
        result = _json_result(body(context, *job.args, **job.kwargs))
    except JobAborted as exc:
        return outcome.aborted(exc.reason, runtime=time.monotonic() - started)
    except JobCancelled:
        lifecycle.record_event(job_id, EventKind.REVOKED, hostname=hostname, message="stopped at an abort check")
        return State.CANCELLED
    except SystemExit as exc:
        # billiard turns SIGTERM in a pool process into SystemExit, so that finally blocks and context
        # managers run; record it as this attempt's error before the process exits.
        terminated = WorkerTerminated(f"the worker process received SIGTERM (exit code {exc.code})")
        outcome.failed(terminated, retryable=True, runtime=time.monotonic() - started)
        raise
    except Exception as exc:
        retryable = isinstance(exc, retry_on + ALWAYS_RETRYABLE)
        return outcome.failed(exc, retryable=retryable, runtime=time.monotonic() - started)
    return outcome.succeeded(result, runtime=time.monotonic() - started, summary=context.summary)


class _Outcome:
    """Records how an attempt ended; every write is conditional on the attempt still owning the job."""

    def __init__(self, job: Job, *, task_id: str, hostname: str) -> None:
        self.job = job
        self.when = {"celery_task_id": task_id}
        self.hostname = hostname

    def _finish(
        self,
        target: State,
        event: EventKind,
        message: str,
        runtime: float,
        *,
        now: datetime | None = None,
        **changes: Any,
    ) -> State | None:
        now = now or timezone.now()
        changed = lifecycle.transition(
            self.job.pk,
            sources=(State.RUNNING,),
            target=target,
            event=event,
            hostname=self.hostname,
            message=message,
            when=self.when,
            now=now,
            runtime=timedelta(seconds=runtime),
            lease_expires_at=None,
            **changes,
        )
        if not changed:
            logger.info("job %s changed hands while running; its %s outcome is not recorded", self.job.pk, target)
            return None
        return target

    def succeeded(self, result: Any, *, runtime: float, summary: str = "") -> State | None:
        changes = {"status_message": summary} if summary else {}
        return self._finish(
            State.SUCCEEDED,
            EventKind.SUCCEEDED,
            "",
            runtime,
            result=result,
            finished_at=timezone.now(),
            progress=1.0,
            **changes,
        )

    def aborted(self, reason: str, *, runtime: float) -> State | None:
        return self._finish(
            State.ABORTED,
            EventKind.ABORTED,
            reason,
            runtime,
            status_message=reason[:500],
            finished_at=timezone.now(),
        )

    def failed(self, exc: BaseException, *, retryable: bool, runtime: float) -> State | None:
        now = timezone.now()
        job = self.job
        errors = [*job.errors, error_record(exc, attempt=job.attempts, retryable=retryable, now=now)]
        summary = f"{type(exc).__name__}: {exc}"[:500]
        if retryable and job.attempts < job.max_attempts:
            eta = now + (getattr(exc, "delay", None) or job.retry_delay)
            state = self._finish(
                State.RETRYING,
                EventKind.RETRIED,
                f"attempt {job.attempts} of {job.max_attempts} failed; next at {eta:%Y-%m-%d %H:%M:%S} UTC",
                runtime,
                now=now,
                errors=errors,
                eta=eta,
                published_at=None,
                status_message=summary,
            )
            if state is not None:
                publishing.publish_if_due(job.pk)
            return state
        reason = "permanent error" if not retryable else f"attempt {job.attempts} was the last"
        return self._finish(
            State.FAILED,
            EventKind.FAILED,
            f"{reason}: {summary}",
            runtime,
            now=now,
            errors=errors,
            finished_at=now,
            status_message=summary,
        )
