"""The retry decision, one object that the worker (a failed attempt) and the recovery sweep (a lost
worker) both ask, in the manner of procrastinate's ``RetryStrategy`` and Oban's ``backoff``."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.models import Job

MAX_TRACEBACK_CHARS = 20_000


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
    once; a failure that asks for its own delay (``RetryLater(delay=...)``: a full provider queue, seconds)
    gets it; any other retryable failure waits the job's delay (``backoff``, the hook for a growing delay).
    """

    def backoff(self, job: Job) -> timedelta:
        return job.retry_delay

    def decide(
        self,
        job: Job,
        *,
        retryable: bool,
        now: datetime,
        worker_lost: bool = False,
        delay: timedelta | None = None,
    ) -> Decision:
        if not retryable:
            return Decision(False, reason="permanent error")
        if job.attempts >= job.max_attempts:
            return Decision(False, reason=f"attempt {job.attempts} was the last")
        if worker_lost:
            return Decision(True, eta=now)
        # A delay of zero (``Retry-After: 0``) is a delay asked for, not a missing one.
        return Decision(True, eta=now + (self.backoff(job) if delay is None else delay))


retry_policy = RetryPolicy()
