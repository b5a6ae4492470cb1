from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from scheduler.models import Job, State
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str, stdin: str | None = None, monkeypatch=None) -> str:
    if stdin is not None:
        monkeypatch.setattr("builtins.input", lambda prompt: stdin)
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_jobs_status_counts_jobs_per_state():
    JobFactory.create_batch(2, state=State.SCHEDULED)
    JobFactory(state=State.FAILED)
    lines = dict(line.split() for line in run("jobs_status").splitlines())
    assert lines["scheduled"] == "2" and lines["failed"] == "1" and lines["running"] == "0"
    assert lines["total"] == "3"


def test_cancel_all_jobs_asks_first_and_cancels_nothing_without_a_yes(monkeypatch):
    JobFactory.create_batch(3, state=State.SCHEDULED)
    with pytest.raises(CommandError, match="Nothing cancelled"):
        run("cancel_all_jobs", stdin="no", monkeypatch=monkeypatch)
    assert Job.objects.filter(state=State.SCHEDULED).count() == 3


def test_cancel_all_jobs_cancels_every_active_job_on_confirmation(monkeypatch):
    JobFactory.create_batch(2, state=State.SCHEDULED)
    JobFactory(state=State.SUCCEEDED)
    assert "Cancelled 2 job(s)." in run("cancel_all_jobs", stdin="yes", monkeypatch=monkeypatch)
    assert "No waiting or running jobs." in run("cancel_all_jobs", "--yes")
    assert sorted(Job.objects.values_list("state", flat=True)) == ["cancelled", "cancelled", "succeeded"]


def test_sweep_jobs_reports_what_it_recovered():
    JobFactory(
        state=State.RUNNING,
        attempts=1,
        max_attempts=3,
        celery_task_id="t1",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        eta=timezone.now() + timedelta(days=1),
    )
    assert run("sweep_jobs") == "republished 0, requeued 1, failed 0, still waiting 0\n"
    assert run("sweep_jobs") == "republished 0, requeued 0, failed 0, still waiting 0\n"


def test_dispatch_jobs_publishes_what_came_within_the_horizon():
    job = JobFactory(eta=timezone.now() + timedelta(hours=2))
    assert run("dispatch_jobs") == "dispatched 0\n"
    with time_machine.travel(job.eta):
        assert run("dispatch_jobs") == "dispatched 1\n"
    assert Job.objects.get(pk=job.pk).state == State.QUEUED
