"""Exceptions a tracked task's body raises, or sees, to steer its job."""

from __future__ import annotations


class RetryLater(Exception):
    """A temporary failure: the next attempt comes after the task's retry delay, if attempts remain."""


class JobAborted(Exception):
    """The work is no longer needed; the job ends ``aborted`` with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobCancelled(Exception):
    """The job was cancelled while its body ran; raised by ``job.check()``."""


class WorkerTerminated(Exception):
    """The worker process running the job received SIGTERM (a deploy, or a terminating cancel)."""
