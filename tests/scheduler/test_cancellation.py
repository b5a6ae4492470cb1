"""Cancel means cancel: with a real worker on each broker, a cancelled job never runs its body."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from scheduler import publishing
from scheduler.models import EventKind, Job, JobEvent, State
from scheduler.services import JobNotDeletable, job_cancel, job_delete, jobs_cancel_all
from tests.conftest import wait_until
from tests.testapp.models import BodyRun
from tests.testapp.tasks import echo, patient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def body_ran(job: Job) -> bool:
    return BodyRun.objects.filter(job_id=job.pk).exists()


def test_a_job_cancelled_before_it_is_published_is_never_published():
    eta = timezone.now() + timedelta(days=1)
    job = echo.enqueue_with(args=["tomorrow"], eta=eta)
    assert job_cancel(job_id=job.pk, reason="no longer wanted")
    with time_machine.travel(eta):
        assert publishing.dispatch_due() == 0
    job.refresh_from_db()
    assert job.state == State.CANCELLED and job.published_at is None
    assert job.status_message == "no longer wanted"
    assert job.events.filter(kind=EventKind.CANCELLED).count() == 1


def test_a_job_cancelled_while_its_eta_message_waits_in_the_worker_never_runs():
    eta = timezone.now() + timedelta(seconds=1.5)
    doomed = echo.enqueue_with(args=["doomed"], eta=eta)
    witness = echo.enqueue_with(args=["witness"], eta=eta + timedelta(seconds=0.3))
    wait_until(lambda: doomed.events.filter(kind=EventKind.RECEIVED).exists(), what="the worker to hold its message")
    assert job_cancel(job_id=doomed.pk)
    # The worker runs ETA messages in order: once the later one ran, the cancelled one had its turn.
    witness.wait(timeout=20)
    assert witness.successful()
    doomed.refresh_from_db()
    assert doomed.state == State.CANCELLED
    assert not body_ran(doomed)


def test_a_running_job_stops_at_its_next_abort_check():
    job = patient.enqueue(30)
    wait_until(lambda: Job.objects.get(pk=job.pk).progress, what="the body to report progress")
    assert job_cancel(job_id=job.pk, reason="operator cancelled")
    wait_until(lambda: job.events.filter(kind=EventKind.REVOKED).exists(), timeout=10, what="the body to stop")
    job.refresh_from_db()
    assert job.state == State.CANCELLED
    assert job.events.get(kind=EventKind.REVOKED).message == "stopped at an abort check"
    assert job.result is None


def test_cancelling_a_finished_job_changes_nothing():
    job = echo.enqueue("done")
    job.wait(timeout=20)
    assert job_cancel(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED


def test_cancel_all_stops_waiting_queued_and_running_jobs():
    running = patient.enqueue(30)
    wait_until(lambda: Job.objects.get(pk=running.pk).progress, what="the running job to make progress")
    finished = echo.enqueue("already done")
    finished.wait(timeout=20)
    far = echo.enqueue_with(args=["far"], eta=timezone.now() + timedelta(days=3))
    soon_eta = timezone.now() + timedelta(seconds=3)
    soon = echo.enqueue_with(args=["soon"], eta=soon_eta)

    assert jobs_cancel_all() == 3
    wait_until(lambda: running.events.filter(kind=EventKind.REVOKED).exists(), timeout=10, what="the body to stop")
    witness = echo.enqueue_with(args=["witness"], eta=soon_eta + timedelta(seconds=0.3))
    witness.wait(timeout=20)
    states = dict(Job.objects.values_list("pk", "state"))
    assert [states[j.pk] for j in (far, soon, running, finished)] == ["cancelled"] * 3 + ["succeeded"]
    assert not body_ran(far) and not body_ran(soon)


def test_only_finished_jobs_can_be_deleted():
    waiting = echo.enqueue_with(args=["x"], eta=timezone.now() + timedelta(days=1))
    with pytest.raises(JobNotDeletable, match="is scheduled"):
        job_delete(job_id=waiting.pk)
    done = echo.enqueue("y")
    done.wait(timeout=20)
    assert done.events.exists()
    job_delete(job_id=done.pk)
    assert not Job.objects.filter(pk=done.pk).exists()
    assert not JobEvent.objects.filter(job_id=done.pk).exists(), "a deleted job's timeline goes with it"
    assert Job.objects.filter(pk=waiting.pk).exists() and waiting.events.exists()


def test_waiting_for_a_job_times_out_with_a_clear_error():
    job = echo.enqueue_with(args=["x"], eta=timezone.now() + timedelta(days=1))
    with pytest.raises(TimeoutError, match=f"job {job.pk} is still scheduled after 0.2s"):
        job.wait(timeout=0.2)
