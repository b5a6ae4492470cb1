"""Recovery with real worker processes: SIGKILL, SIGTERM, soft time limits and a purged queue."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from scheduler import publishing
from scheduler.models import EventKind, Job, State
from scheduler.recovery import jobs_sweep
from tests.conftest import kill_group, purge_queues, queue_size, wait_until
from tests.factories import JobFactory
from tests.testapp.models import BodyRun
from tests.testapp.tasks import echo, holds_a_file, overruns, stalls_first

pytestmark = pytest.mark.django_db(transaction=True)


def first_run(job: Job) -> BodyRun:
    return wait_until(lambda: BodyRun.objects.filter(job_id=job.pk).first(), what="the body to start")


def test_a_job_whose_worker_was_killed_is_recovered_by_the_sweep(worker_process, settings):
    process = worker_process()
    job = stalls_first.enqueue(60)
    first_run(job)
    kill_group(process, signal.SIGKILL)
    job.refresh_from_db()
    assert job.state == State.RUNNING

    assert jobs_sweep().requeued == 0, "the lease has not expired yet"
    with time_machine.travel(job.lease_expires_at + timedelta(seconds=1)):
        report = jobs_sweep()
    assert report.requeued == 1
    job.refresh_from_db()
    assert job.state == State.RETRYING
    assert "stopped renewing the lease of attempt 1" in job.errors[0]["message"]

    worker_process()
    job.wait(timeout=60)
    assert job.state == State.SUCCEEDED
    assert job.result == 2
    assert list(BodyRun.objects.filter(job_id=job.pk).values_list("attempt", flat=True)) == [1, 2]
    assert job.events.filter(kind=EventKind.RECOVERED).exists()


def test_a_killed_worker_fails_the_job_after_its_last_attempt(worker_process):
    process = worker_process()
    job = stalls_first.enqueue_with(args=[60], max_attempts=1)
    first_run(job)
    kill_group(process, signal.SIGKILL)
    with time_machine.travel(Job.objects.get(pk=job.pk).lease_expires_at + timedelta(seconds=1)):
        assert jobs_sweep().failed == 1
    job.refresh_from_db()
    assert job.state == State.FAILED
    assert job.errors[-1]["type"] == "scheduler.recovery.WorkerLost"


def test_a_purged_queue_is_recovered_by_the_sweep(broker, worker_process, settings):
    purge_queues()
    job = echo.enqueue("lost in a purge")
    assert queue_size("default") == 1
    purge_queues()
    job.refresh_from_db()
    assert job.state == State.QUEUED
    lost_task_id = job.celery_task_id

    assert jobs_sweep().republished == 0, "too early to call the message lost"
    with time_machine.travel(timezone.now() + settings.JOB_UNCLAIMED_GRACE + timedelta(seconds=1)):
        assert jobs_sweep().republished == 1
    job.refresh_from_db()
    assert job.celery_task_id != lost_task_id

    worker_process()
    job.wait(timeout=60)
    assert job.state == State.SUCCEEDED
    assert BodyRun.objects.filter(job_id=job.pk).count() == 1


def test_a_backlog_longer_than_the_grace_drains_without_republishing_waiting_jobs(worker_process, settings):
    settings.JOB_UNCLAIMED_GRACE = timedelta(seconds=0.5)
    purge_queues()
    backlog = [stalls_first.enqueue(0.2) for _ in range(12)]
    worker_process()
    republished, seen_waiting = 0, 0
    while Job.objects.filter(pk__in=[job.pk for job in backlog], state__in=["queued", "running"]).exists():
        report = jobs_sweep()
        republished += report.republished
        seen_waiting = max(seen_waiting, report.waiting)
        time.sleep(0.3)  # the pace of a sweep loop; nothing waits on it
    assert republished == 0
    assert seen_waiting > 0, "the backlog outlasted the grace"
    assert set(Job.objects.filter(pk__in=[job.pk for job in backlog]).values_list("state", flat=True)) == {"succeeded"}
    assert BodyRun.objects.filter(job_id__in=[job.pk for job in backlog]).count() == len(backlog)


def test_the_messages_a_killed_worker_held_are_republished_once(broker, worker_process, settings):
    purge_queues()
    process = worker_process()
    eta = timezone.now() + timedelta(seconds=3)
    held = [echo.enqueue_with(args=[i], eta=eta) for i in range(3)]
    wait_until(
        lambda: all(job.events.filter(kind=EventKind.RECEIVED).exists() for job in held),
        timeout=60,
        what="the worker to hold the messages",
    )
    kill_group(process, signal.SIGKILL)
    if broker.name == "rabbitmq":
        # RabbitMQ gives a dead consumer's unacknowledged messages back to the queue: nothing is lost.
        wait_until(lambda: queue_size("default") == len(held), what="RabbitMQ to requeue the messages")
        expected = 0
    else:
        # Redis keeps them aside until its visibility timeout (hours); the embedded broker loses them.
        expected = len(held)

    with time_machine.travel(eta + settings.JOB_UNCLAIMED_GRACE + timedelta(seconds=1)):
        assert jobs_sweep().republished == expected
        assert jobs_sweep().republished == 0

    worker_process()
    for job in held:
        job.wait(timeout=60)
        assert job.successful()
    assert BodyRun.objects.filter(job_id__in=[job.pk for job in held]).count() == len(held)


def test_a_job_claimed_and_retrying_since_it_was_judged_lost_is_not_republished():
    # The sweep judged the message lost, then, before it locked the row, a worker claimed the job and the
    # attempt failed: the same task id, but waiting in the database for a retry an hour away.
    now = timezone.now()
    job = JobFactory(
        state=State.RETRYING, celery_task_id="judged-lost", published_at=None, eta=now + timedelta(hours=1), attempts=1
    )
    assert publishing.mark(job, now=now, republish=True, event_message="republished: never claimed") is None
    job.refresh_from_db()
    assert (job.celery_task_id, job.published_at) == ("judged-lost", None)
    assert not job.events.exists()


def test_sigterm_becomes_a_recorded_error_after_clean_up_and_another_attempt_follows_at_once(worker_process, tmp_path):
    worker_process()
    held = tmp_path / "held"
    # The attempt did not fail on its merits: the next one must not wait out the task's hour, as after a
    # killed worker.
    job = holds_a_file.enqueue_with(args=[str(held), 60], retry_delay=timedelta(hours=1))
    run = first_run(job)
    os.kill(run.pid, signal.SIGTERM)
    wait_until(lambda: Job.objects.get(pk=job.pk).errors, timeout=60, what="the terminated attempt to be recorded")
    job.refresh_from_db()
    assert job.eta == job.events.get(kind=EventKind.RETRIED).at
    job.wait(timeout=60)
    assert job.state == State.SUCCEEDED and job.result == 2
    [error] = job.errors
    assert error["type"] == "scheduler.errors.WorkerTerminated" and error["retryable"] is True
    assert held.read_text() == "opened, closed"


def test_a_soft_time_limit_is_recorded_as_an_error_after_clean_up(worker_process, tmp_path):
    worker_process()
    held = tmp_path / "held"
    job = overruns.enqueue(str(held))
    job.wait(timeout=60)
    assert job.state == State.FAILED
    [error] = job.errors
    assert error["type"].endswith(".SoftTimeLimitExceeded")
    assert held.read_text() == "opened, closed"
