"""Writes on jobs: enqueue, cancel, delete, run now (recovery is in ``scheduler.recovery``)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from scheduler import lifecycle, publishing, statements
from scheduler.models import FINAL_STATES, EventKind, Job, JobEvent, State

logger = logging.getLogger(__name__)


class JobNotDeletable(Exception):
    pass


def job_enqueue(
    *,
    task_name: str,
    queue: str,
    args: list[Any] | tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    eta: datetime | None = None,
    max_attempts: int = 1,
    retry_delay: timedelta | None = None,
    target: models.Model | None = None,
    unique_key: str | None = None,
    label: str = "",
) -> Job:
    """Write the job row, and publish it after commit if it is due within the horizon.

    With ``unique_key``, enqueueing the same work twice returns the first job instead of a second one.
    """
    job, events, publish = _new_job(
        task_name=task_name, queue=queue, args=args, kwargs=kwargs, eta=eta, max_attempts=max_attempts,
        retry_delay=retry_delay, target=target, unique_key=unique_key, label=label, now=timezone.now(),
    )  # fmt: skip
    insert = _insert_with_events if connection.vendor == "postgresql" else _insert_in_savepoint
    if not insert(job, events):
        return Job.objects.get(unique_key=unique_key)
    if publish:
        publishing.send_on_commit(job)
    return job


def _insert_in_savepoint(job: Job, events: list[JobEvent]) -> bool:
    """Insert the job and its events; ``False`` if its unique key exists (the savepoint keeps a caller's
    transaction usable after the failed INSERT)."""
    try:
        with transaction.atomic():
            job.save(force_insert=True)
            JobEvent.objects.bulk_create(events)
    except IntegrityError:
        if job.unique_key is None:
            raise
        return False
    return True


def _insert_with_events(job: Job, events: list[JobEvent]) -> bool:
    """PostgreSQL: ``_insert_in_savepoint`` in one statement.

    ``ON CONFLICT DO NOTHING`` instead of a savepoint around an INSERT that may fail: one round trip where
    there were four (savepoint, job, events, release), on the path of every send now and of every occurrence
    the planner enqueues as one job.
    """
    insert, params = statements.insert_sql(Job, connection.alias), statements.insert_params(job)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(events))
    statement = (
        f"WITH job AS ({insert}), event AS (INSERT INTO {connection.ops.quote_name(JobEvent._meta.db_table)} "
        f"(job_id, kind, at, hostname, message) SELECT job.id, e.kind, e.at, e.hostname, e.message FROM job, "
        f"(VALUES {rows}) AS e (kind, at, hostname, message)) SELECT id FROM job"
    )
    values = [value for event in events for value in (event.kind, event.at, event.hostname, event.message)]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, *values])
        row = cursor.fetchone()
    if row is None:
        return False
    job.pk = row[0]
    job._state.adding = False
    for event in events:
        event.job_id = job.pk
    return True


def jobs_enqueue(requests: list[dict[str, Any]]) -> list[Job]:
    """``job_enqueue`` for each dict of its arguments, in one INSERT for the jobs and one for their events
    (an occurrence's shares: hundreds of jobs at once); returns the jobs in the same order.

    A unique key that exists already gives the existing job, as ``job_enqueue`` does. If another process
    inserts one of the keys meanwhile, the batch falls back to one job at a time.
    """
    if len(requests) <= 1:
        return [job_enqueue(**request) for request in requests]
    now = timezone.now()
    built = [_new_job(**request, now=now) for request in requests]
    keys = [job.unique_key for job, _, _ in built if job.unique_key is not None]
    try:
        with transaction.atomic():
            existing = Job.objects.in_bulk(keys, field_name="unique_key") if keys else {}
            fresh = [(job, events, publish) for job, events, publish in built if job.unique_key not in existing]
            Job.objects.bulk_create([job for job, _, _ in fresh])
            JobEvent.objects.bulk_create([event for _, events, _ in fresh for event in events])
    except IntegrityError:
        return [job_enqueue(**request) for request in requests]
    for job, _, publish in fresh:
        if publish:
            publishing.send_on_commit(job)
    return [existing.get(job.unique_key, job) for job, _, _ in built]


def _new_job(
    *,
    task_name: str,
    queue: str,
    args: list[Any] | tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    eta: datetime | None = None,
    max_attempts: int = 1,
    retry_delay: timedelta | None = None,
    target: models.Model | None = None,
    unique_key: str | None = None,
    label: str = "",
    now: datetime,
) -> tuple[Job, list[JobEvent], bool]:
    """The job row to insert, its first events, and whether it is published once they commit."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if eta is not None and timezone.is_naive(eta):
        raise ValueError("eta must be timezone-aware")
    try:
        args, kwargs = json.loads(json.dumps([list(args), kwargs or {}]))
    except TypeError as exc:
        raise TypeError(f"arguments of {task_name} must be JSON values: {exc}") from None
    job = Job(
        task_name=task_name,
        queue=queue,
        args=args,
        kwargs=kwargs,
        eta=eta or now,
        max_attempts=max_attempts,
        retry_delay=retry_delay or settings.JOB_RETRY_DELAY,
        unique_key=unique_key,
        label=label[:200],
        created_at=now,
        modified_at=now,
    )
    if target is not None:
        job.target_type = ContentType.objects.get_for_model(target)
        job.target_id = str(target.pk)
    events = [JobEvent(job=job, kind=EventKind.SCHEDULED, at=now, message=f"due {job.eta:%Y-%m-%d %H:%M:%S} UTC")]
    publish = job.eta <= publishing.horizon_end(now)
    if publish:
        events.append(publishing.mark_new(job, now=now))
    return job, events, publish


def job_cancel(*, job_id: int, reason: str = "cancelled", terminate: bool = False, release_key: bool = False) -> bool:
    """Cancel a waiting or running job; return ``False`` if it was no longer active.

    The conditional UPDATE is what makes the cancel stick: a claim never takes a cancelled job, even on
    a worker that was offline when the revoke went out. A running body sees it at its next abort check.

    ``release_key`` frees the job's unique key, for when it is this job that is called off and not the work
    it stands for: the work may be asked for again later, and gets a new job instead of finding this one.
    """
    cancelled = lifecycle.cancel(job_id, reason=reason, release_key=release_key)
    if cancelled:
        task_id = Job.objects.filter(pk=job_id).values_list("celery_task_id", flat=True).first()
        if task_id:
            transaction.on_commit(lambda: publishing.revoke([task_id], terminate=terminate))
    return cancelled


def jobs_cancel_all(
    *, reason: str = "cancelled (cancel all)", terminate: bool = False, target: models.Model | None = None
) -> int:
    """Cancel every waiting and running job (only ``target``'s, if given: an alert's hundreds of shares) in
    one sweep and one revoke broadcast; return how many were cancelled.

    ``terminate`` also signals the processes running jobs (SIGTERM, turned into an error inside the
    body so that its context managers and transactions close); it is never the default.
    """
    scope = None if target is None else (ContentType.objects.get_for_model(target).pk, str(target.pk))
    with transaction.atomic():
        count, task_ids = lifecycle.cancel_all(reason=reason, target=scope)
        transaction.on_commit(lambda: publishing.revoke(task_ids, terminate=terminate))
    return count


def job_delete(*, job_id: int) -> None:
    deleted, _ = Job.objects.filter(pk=job_id, state__in=FINAL_STATES).delete()
    if not deleted:
        state = Job.objects.filter(pk=job_id).values_list("state", flat=True).first()
        if state is None:
            raise Job.DoesNotExist(f"job {job_id} does not exist")
        raise JobNotDeletable(
            f"job {job_id} is {state}; only finished, failed, cancelled or aborted jobs can be deleted"
        )


def job_mark_seen(*, job: Job) -> None:
    """Viewing a job that is over marks it seen: it leaves the header's counters and loses its highlight.

    Not a state change: ``modified_at`` stays, so the job keeps its place in the list.
    """
    if job.is_final and not job.seen:
        Job.objects.filter(pk=job.pk, seen=False, state__in=FINAL_STATES).update(seen=True)
        job.seen = True


# Sent (with ``job_id``) inside the transaction that requeues a job needing attention: the app that owns
# its body marks what the operator asked to resend (e.g. deliveries whose outcome was unknown).
resend_requested = Signal()


def job_run_now(*, job_id: int) -> bool:
    """Run a waiting job now instead of at its ETA, or give a failed job (or one that needs attention) one
    more attempt."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state in (State.FAILED, State.ATTENTION):
            message = "retry requested" if job.state == State.FAILED else "resend requested"
            resend = job.state == State.ATTENTION
            changed = lifecycle.requeue(job, message=message, now=now)
            if changed and resend:
                resend_requested.send(sender=Job, job_id=job_id)
        else:
            changed = bool(
                Job.objects.filter(
                    pk=job_id, state__in=publishing.UNPUBLISHED_STATES, published_at__isnull=True
                ).update(eta=now, modified_at=now)
            )
        if changed:
            publishing.publish_on_commit(job_id)
    return changed


def job_retry_aborted(*, job_id: int, reason: str, eta: datetime | None = None) -> bool:
    """Give a job that ended ``aborted`` another attempt, due at ``eta`` (now if it has passed or is not
    given), published after commit: its owner says that what stopped it no longer holds (an alert resumed).
    ``False`` if the job was not aborted (an operator cancelled it, it ran again already)."""
    now = timezone.now()
    job = Job.objects.only("state", "attempts", "max_attempts").get(pk=job_id)
    if job.state != State.ABORTED:
        return False
    changed = lifecycle.requeue(job, message=reason, now=now, eta=max(now, eta or now))
    if changed:
        publishing.publish_on_commit(job_id)
    return changed


def job_settle(*, job_id: int, operator: str) -> bool:
    """Mark a job that needs attention as settled (an operator checked it): it ends ``succeeded``."""
    return lifecycle.settle(job_id, operator=operator)
