"""Exceptions a tracked task's body raises, or sees, to steer its job."""

from __future__ import annotations

from datetime import timedelta


class RetryLater(Exception):
    """A temporary failure: the next attempt comes after ``delay`` (default: the task's retry delay), if
    attempts remain."""

    def __init__(self, message: str = "", *, delay: timedelta | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class JobAborted(Exception):
    """The work is no longer needed; the job ends ``aborted`` with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobCancelled(Exception):
    """The job was cancelled while its body ran; raised by ``job.check()``."""


class WorkerTerminated(Exception):
    """The worker process running the job received SIGTERM (a deploy, or a terminating cancel)."""
