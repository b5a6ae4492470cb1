"""Handing jobs to the broker: only jobs due within the ETA horizon, and only after commit.

A job is first marked published (new Celery task id, ``published_at``, a ``sent`` event) in a committed
transaction, then sent. A crash between the two leaves a job marked published that the broker never got;
the recovery sweep republishes it. A send that fails is undone at once, so the dispatcher tries again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from scheduler import lifecycle
from scheduler.models import Job, JobEvent, State

logger = logging.getLogger(__name__)

UNPUBLISHED_STATES = (State.SCHEDULED, State.RETRYING)
# Task ids per revoke broadcast (about 40 bytes each): a cancel-all revokes thousands in a few messages.
REVOKE_CHUNK = 10_000


@dataclass(frozen=True)
class Marked:
    job_id: int
    task_name: str
    queue: str
    eta: datetime
    task_id: str
    state: State


def horizon_end(now: datetime) -> datetime:
    return now + settings.JOB_ETA_HORIZON


def _sent_message(job: Job, now: datetime) -> str:
    due = f", due {job.eta:%Y-%m-%d %H:%M:%S} UTC" if job.eta > now else ""
    return f"to queue {job.queue}{due}"


def mark(job: Job, *, now: datetime, event_message: str = "", republish: bool = False) -> Marked | None:
    """Claim ``job`` for publishing under a fresh task id; ``None`` if someone else did first."""
    task_id = str(uuid.uuid4())
    state = lifecycle.mark_published(
        job, task_id=task_id, now=now, message=event_message or _sent_message(job, now), republish=republish
    )
    if state is None:
        return None
    return Marked(job.pk, job.task_name, job.queue, job.eta, task_id, state)


def mark_new(job: Job, *, now: datetime) -> JobEvent:
    """Mark a job that is about to be inserted as published; return its ``sent`` event, to insert with it.

    Marking in the creating transaction spares an UPDATE, an event and a commit per job; the job is sent
    after that transaction commits (``send_on_commit``), exactly as ``mark`` then ``send`` would.
    """
    return lifecycle.mark_new_published(job, task_id=str(uuid.uuid4()), now=now, message=_sent_message(job, now))


def send_on_commit(job: Job) -> None:
    marked = Marked(job.pk, job.task_name, job.queue, job.eta, job.celery_task_id, State(job.state))
    transaction.on_commit(lambda: send(marked))


def send(marked: Marked) -> bool:
    """Publish a marked job; on failure put it back to wait for the dispatcher."""
    now = timezone.now()
    try:
        current_app.send_task(
            marked.task_name,
            args=[marked.job_id],
            task_id=marked.task_id,
            eta=marked.eta if marked.eta > now else None,
            queue=settings.JOB_BROKER_QUEUES[marked.queue],
            routing_key=settings.JOB_BROKER_QUEUES[marked.queue],
        )
        return True
    except Exception as exc:
        logger.exception("publishing job %s failed", marked.job_id)
        lifecycle.mark_unpublished(
            marked.job_id,
            state=marked.state,
            task_id=marked.task_id,
            message=f"publishing failed, will try again: {exc.__class__.__name__}",
        )
        return False


def publish_if_due(job_id: int) -> bool:
    """Publish one job now if it is unpublished and due within the horizon."""
    now = timezone.now()
    job = (
        Job.objects.filter(pk=job_id, state__in=UNPUBLISHED_STATES, published_at__isnull=True)
        .only("pk", "state", "task_name", "queue", "eta", "celery_task_id")
        .first()
    )
    if job is None or job.eta > horizon_end(now):
        return False
    marked = mark(job, now=now)
    return marked is not None and send(marked)


def publish_on_commit(job_id: int) -> None:
    transaction.on_commit(lambda: publish_if_due(job_id))


def dispatch_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Publish the jobs that have come within the horizon; return how many were sent.

    ``SKIP LOCKED`` lets several dispatchers share the work on PostgreSQL; the conditional UPDATE in
    ``mark`` makes a second publish of the same job impossible on every database.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(state__in=UNPUBLISHED_STATES, published_at__isnull=True, eta__lte=horizon_end(now))
            .order_by("eta")
            .only("pk", "state", "task_name", "queue", "eta", "celery_task_id")[:limit]
        )
        marked = [m for m in (mark(job, now=now) for job in due) if m is not None]
    return sum(send(m) for m in marked)


def revoke(task_ids: list[str], *, terminate: bool = False) -> None:
    """Tell the workers to discard these messages; the claim refusing them is what makes it final."""
    for start in range(0, len(task_ids), REVOKE_CHUNK):
        chunk = task_ids[start : start + REVOKE_CHUNK]
        try:
            current_app.control.revoke(chunk, terminate=terminate, signal="SIGTERM")
        except Exception:
            # The database already refuses the claim; a revoke is only a second line of defence.
            logger.exception("revoking %d task(s) failed", len(chunk))
