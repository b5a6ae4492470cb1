"""Recovery: republish messages the broker lost, rescue jobs whose worker died.

Both run from the periodic sweep (``scheduler.sweep_jobs``) and ``manage.py sweep_jobs``; both are
idempotent and safe on several nodes at once (``SKIP LOCKED`` and conditional updates).

A job published long ago and never claimed is not necessarily lost: with a backlog longer than the
grace it is still waiting in the queue, and an ETA or prefetched message waits in a worker's memory.
Republishing those would be a storm (each republish revokes the old message and sends a new one behind
the backlog). So before calling a message lost the sweep asks where it could be:

- **in a worker**: the task ids the workers report as reserved, scheduled or active (``inspect``, asked
  once per sweep and only when there is a candidate);
- **in the queue**: the broker's queue depth D (RabbitMQ's ``message_count``, Redis ``LLEN``, the
  embedded folder's file count). Queues are first in, first out, so the messages still in a queue are
  the D most recently published of the jobs that no worker holds; a job published before the oldest of
  those is neither in the queue nor in a worker: its message was lost.

Anything else in the queue (the engine's own periodic tasks) only makes the depth larger, which errs on
the side of waiting one more sweep. A message wrongly judged lost costs a republish, never a second run:
the claim needs the new task id, and the old one is revoked. One sweep republishes at most
``REPUBLISH_CAP`` messages and reports what it left for the next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from scheduler import lifecycle, publishing
from scheduler.models import Job, State

logger = logging.getLogger(__name__)

REPUBLISH_CAP = 500
INSPECT_TIMEOUT = 0.5
UNCLAIMED = (State.QUEUED, State.RETRYING)


class WorkerLost(Exception):
    """Recorded as the error of an attempt whose worker died."""


@dataclass
class SweepReport:
    republished: int = 0
    requeued: int = 0
    failed: int = 0
    # Past the grace but found in a queue or in a worker: waiting behind a backlog, not lost.
    waiting: int = 0
    # Judged lost but over the cap: left for the next sweep.
    deferred: int = 0

    def __bool__(self) -> bool:
        return any((self.republished, self.requeued, self.failed, self.deferred))

    def __str__(self) -> str:
        text = (
            f"republished {self.republished}, requeued {self.requeued}, failed {self.failed}, "
            f"still waiting {self.waiting}"
        )
        if self.deferred:
            text += f", {self.deferred} more lost left for the next sweep (at most {REPUBLISH_CAP} a sweep)"
        return text


def jobs_sweep(*, now: datetime | None = None, limit: int = 1000, cap: int = REPUBLISH_CAP) -> SweepReport:
    """Recover jobs the broker or a worker lost; see the module for how a lost message is told apart."""
    now = now or timezone.now()
    report = SweepReport()
    republish_lost(now=now, limit=limit, cap=cap, report=report)
    rescue_expired_leases(now=now, limit=limit, report=report)
    return report


# --- Lost messages ---------------------------------------------------------------------------------------


def queue_depth(broker_queue: str) -> int | None:
    """How many messages wait in ``broker_queue``; ``None`` if the broker cannot say."""
    try:
        with current_app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=broker_queue, passive=True).message_count
    except Exception as exc:
        # RabbitMQ answers a passive declare of a missing queue with an error: nothing waits there.
        logger.info("could not read the depth of queue %s: %s", broker_queue, exc)
        return None


def held_by_workers() -> set[str]:
    """The task ids the workers hold: running, prefetched, or waiting for their ETA."""
    held: set[str] = set()
    try:
        inspect = current_app.control.inspect(timeout=INSPECT_TIMEOUT)
        for reply in (inspect.active(), inspect.reserved()):
            for requests in (reply or {}).values():
                held.update(request["id"] for request in requests)
        for entries in (inspect.scheduled() or {}).values():
            held.update(entry["request"]["id"] for entry in entries)
    except Exception:
        # Without the answer a held message may be republished: a wasted message, never a second run.
        logger.exception("could not ask the workers what they hold")
    return held


class _Whereabouts:
    """Where an unclaimed message may be, asked of the broker and the workers at most once per sweep."""

    def __init__(self) -> None:
        self._held: set[str] | None = None
        self._depths: dict[str, int | None] = {}

    @property
    def held(self) -> set[str]:
        if self._held is None:
            self._held = held_by_workers()
        return self._held

    def depth(self, queue: str) -> int | None:
        if queue not in self._depths:
            self._depths[queue] = queue_depth(settings.JOB_BROKER_QUEUES.get(queue, queue))
        return self._depths[queue]

    def oldest_queued(self, queue: str) -> tuple[datetime, int] | None:
        """``(published_at, id)`` of the oldest job presumed still in ``queue``; ``None``: none is.

        A broker that cannot tell its depth gets the sweep's earlier rule: past the grace is lost.
        """
        depth = self.depth(queue)
        if not depth:
            return None
        row = (
            Job.objects.filter(queue=queue, state__in=UNCLAIMED, published_at__isnull=False)
            .exclude(celery_task_id__in=self.held)
            .order_by("-published_at", "-id")
            .values_list("published_at", "pk")[depth - 1 : depth]
        )
        # Fewer unclaimed jobs than messages: every one of them may be in the queue.
        return row[0] if row else (datetime.min.replace(tzinfo=UTC), 0)


def _is_lost(job: Job, where: _Whereabouts) -> bool:
    if job.celery_task_id in where.held:
        return False
    oldest = where.oldest_queued(job.queue)
    if oldest is None:
        return True
    return (job.published_at, job.pk) < oldest


def republish_lost(*, now: datetime, limit: int, cap: int, report: SweepReport) -> None:
    """Republish the messages of jobs published and due long ago that are in no queue and no worker.

    The broker and the workers are asked outside any transaction (no row waits on a broadcast), queue
    depths before workers: a message moving from a queue to a worker meanwhile is then counted twice,
    which errs on the side of waiting, never missed by both.
    """
    grace_cutoff = now - settings.JOB_UNCLAIMED_GRACE
    stale_jobs = Job.objects.filter(state__in=UNCLAIMED, published_at__lt=grace_cutoff, eta__lt=grace_cutoff)
    queues = set(stale_jobs.values_list("queue", flat=True).distinct())
    if not queues:
        return
    where = _Whereabouts()
    for queue in sorted(queues):
        where.depth(queue)
    where.held  # noqa: B018  (asked now, after the depths)
    stale = list(
        stale_jobs.order_by("published_at", "pk").only("pk", "queue", "celery_task_id", "published_at")[:limit]
    )
    lost = {job.pk: job.celery_task_id for job in stale if _is_lost(job, where)}
    report.waiting = len(stale) - len(lost)
    report.deferred = max(len(lost) - cap, 0)
    marked = []
    with transaction.atomic():
        for job in (
            Job.objects.select_for_update(skip_locked=True)
            .filter(pk__in=list(lost)[:cap], state__in=UNCLAIMED)
            .only("pk", "state", "task_name", "queue", "eta", "celery_task_id")
        ):
            if job.celery_task_id != lost[job.pk]:
                continue  # republished by another sweep meanwhile
            again = publishing.mark(job, now=now, republish=True, event_message="republished: never claimed")
            if again is not None:
                marked.append((job.celery_task_id, again))
    if marked:
        publishing.revoke([old_task_id for old_task_id, _ in marked])
    for _, again in marked:
        report.republished += publishing.send(again)


# --- Expired leases --------------------------------------------------------------------------------------


def rescue_expired_leases(*, now: datetime, limit: int, report: SweepReport) -> None:
    """Jobs running with an expired lease lost their worker: the attempt counts, the policy decides."""
    with transaction.atomic():
        expired = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(state=State.RUNNING, lease_expires_at__lt=now)
            .only("pk", "state", "attempts", "max_attempts", "errors", "celery_task_id", "worker", "retry_delay")[
                :limit
            ]
        )
        requeued = []
        for job in expired:
            lost_worker = WorkerLost(f"worker {job.worker or '?'} stopped renewing the lease of attempt {job.attempts}")
            outcome = lifecycle.rescue(job, lost_worker, now=now)
            if outcome == State.RETRYING:
                requeued.append(job.pk)
            elif outcome == State.FAILED:
                report.failed += 1
    for job_id in requeued:
        publishing.publish_if_due(job_id)
    report.requeued = len(requeued)
