"""Publishing's changes: a job claimed for its message under a fresh task id, or back to waiting."""

from __future__ import annotations

from datetime import datetime

from scheduler.lifecycle.changes import transition
from scheduler.models import EventKind, Job, JobEvent, State


def _state_once_published(state: str) -> State:
    return State.QUEUED if state == State.SCHEDULED else State(state)


def mark_published(job: Job, *, task_id: str, now: datetime, message: str, republish: bool = False) -> State | None:
    """Publishing claims ``job`` under a fresh task id (``scheduled`` -> ``queued``; a retry stays
    ``retrying``). A republish must present the lost message's task id, still published: an attempt that
    claimed and failed meanwhile keeps that id but waits unpublished for its retry, which is the
    dispatcher's to publish at its time. ``None``: someone else did first."""
    target = _state_once_published(job.state)
    when = (
        {"celery_task_id": job.celery_task_id, "published_at__isnull": False}
        if republish
        else {"published_at__isnull": True}
    )
    changed = transition(
        job.pk,
        sources=(job.state,),
        target=target,
        event=EventKind.RECOVERED if republish else EventKind.SENT,
        message=message,
        when=when,
        now=now,
        celery_task_id=task_id,
        published_at=now,
    )
    return target if changed else None


def mark_new_published(job: Job, *, task_id: str, now: datetime, message: str) -> JobEvent:
    """Mark a job about to be inserted as published; return its ``sent`` event, to insert with it."""
    job.state = State.QUEUED
    job.celery_task_id = task_id
    job.published_at = now
    return JobEvent(job=job, kind=EventKind.SENT, at=now, message=message)


def mark_unpublished(job_id: int, *, state: State, task_id: str, message: str) -> bool:
    """Publishing failed: the job waits for the dispatcher again (no event: nothing happened)."""
    return transition(
        job_id,
        sources=(state,),
        target=State.SCHEDULED if state == State.QUEUED else state,
        event=None,
        when={"celery_task_id": task_id},
        published_at=None,
        status_message=message[:500],
    )
