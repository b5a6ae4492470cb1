"""Retention of finished jobs: what goes, what stays, in batches, from the command and the periodic task."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler import lifecycle
from scheduler.models import EventKind, Job, JobEvent, State
from scheduler.retention import Policy, prune
from scheduler.tasks import prune_jobs
from tests.config.test_settings import start
from tests.conftest import wait_until
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def aged(state: str, days: float, *, events: int = 2) -> Job:
    """A job whose last change was ``days`` ago, with a timeline of ``events`` events."""
    job = JobFactory(state=state, modified_at=timezone.now() - timedelta(days=days))
    for _ in range(events):
        lifecycle.record_event(job.pk, EventKind.STARTED)
    return job


def remaining(*jobs: Job) -> set[int]:
    return set(Job.objects.filter(pk__in=[job.pk for job in jobs]).values_list("pk", flat=True))


def run(*args: str) -> str:
    out = StringIO()
    call_command("prune_jobs", *args, stdout=out)
    return out.getvalue()


def test_finished_jobs_past_their_retention_go_with_their_events_and_the_rest_stays():
    old = [aged(State.SUCCEEDED, 31), aged(State.CANCELLED, 40), aged(State.ABORTED, 365)]
    old_failed = aged(State.FAILED, 91)
    recent = [aged(State.SUCCEEDED, 29), aged(State.FAILED, 31), aged(State.FAILED, 89)]
    # Waiting and running jobs stay whatever their age: their work is not done.
    active = [aged(state, 400) for state in (State.SCHEDULED, State.QUEUED, State.RUNNING, State.RETRYING)]

    report = prune()

    assert report.counts["jobs"] == 4 and report.counts["job events"] == 8
    assert remaining(*old, old_failed, *recent, *active) == {job.pk for job in [*recent, *active]}
    assert not JobEvent.objects.filter(job_id__in=[job.pk for job in [*old, old_failed]]).exists()
    assert JobEvent.objects.filter(job_id__in=[job.pk for job in recent]).count() == 6


def test_a_job_needing_attention_is_kept_as_long_as_a_failed_one():
    # Its work may not have been done: it stays in the operators' sight as long as a failure does.
    kept = [aged(State.ATTENTION, 31), aged(State.ATTENTION, 89)]
    gone = aged(State.ATTENTION, 91)
    prune()
    assert remaining(*kept, gone) == {job.pk for job in kept}


def test_the_retention_follows_the_settings(settings):
    settings.JOB_RETENTION_DAYS = 7
    settings.JOB_FAILED_RETENTION_DAYS = 10
    gone = [aged(State.SUCCEEDED, 8), aged(State.FAILED, 11)]
    kept = [aged(State.SUCCEEDED, 6), aged(State.FAILED, 9)]
    prune()
    assert remaining(*gone, *kept) == {job.pk for job in kept}


def test_a_dry_run_counts_and_deletes_nothing():
    jobs = [aged(State.SUCCEEDED, 31), aged(State.FAILED, 91, events=3), aged(State.SUCCEEDED, 1)]

    output = run("--dry-run")

    assert output.startswith("would delete 2 jobs, 5 job events")
    assert Job.objects.count() == 3 and JobEvent.objects.count() == 7
    assert remaining(*jobs) == {job.pk for job in jobs}


def test_the_command_says_what_it_deleted():
    aged(State.SUCCEEDED, 31, events=1)
    aged(State.SUCCEEDED, 2)
    output = run()
    assert output.startswith("deleted 1 jobs, 1 job events")
    assert "older than 30 days" in output and "older than 90 days" in output
    assert Job.objects.count() == 1


def test_the_command_can_prune_younger_jobs_than_the_settings_for_one_run():
    kept = aged(State.SUCCEEDED, 1)
    gone = [aged(State.SUCCEEDED, 3), aged(State.FAILED, 6)]
    run("--days", "2", "--failed-days", "5")
    assert remaining(kept, *gone) == {kept.pk}


def test_the_command_refuses_a_negative_number_of_days():
    aged(State.SUCCEEDED, 31)
    with pytest.raises(CommandError, match="cannot be negative"):
        run("--days", "-1")
    assert Job.objects.count() == 1


def test_jobs_are_deleted_in_transactions_of_at_most_the_batch_size(settings):
    settings.JOB_PRUNE_BATCH_SIZE = 2
    for _ in range(5):
        aged(State.SUCCEEDED, 31, events=0)
    with CaptureQueriesContext(connection) as captured:
        report = prune()
    deletes = [q["sql"] for q in captured if q["sql"].startswith('DELETE FROM "scheduler_job" ')]
    assert report.counts["jobs"] == 5
    assert len(deletes) == 3  # 2 + 2 + 1


def test_a_run_out_of_time_stops_and_says_so():
    aged(State.SUCCEEDED, 31)
    report = prune(budget=0)
    assert not report.complete
    assert "time budget used up" in str(report)
    assert Job.objects.count() == 1


def test_the_periodic_task_is_scheduled_by_beat_on_the_maintenance_queue():
    entry = settings.CELERY_BEAT_SCHEDULE["scheduler.prune-jobs"]
    assert entry["task"] == prune_jobs.name
    assert entry["schedule"] == settings.JOB_PRUNE_INTERVAL.total_seconds()
    assert entry["options"]["queue"] == settings.JOB_BROKER_QUEUES["maintenance"]


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_the_periodic_task_prunes_in_a_real_worker(worker):
    old, new = aged(State.SUCCEEDED, 31), aged(State.SUCCEEDED, 1)
    prune_jobs.apply_async(queue=settings.JOB_BROKER_QUEUES["maintenance"])
    wait_until(lambda: not Job.objects.filter(pk=old.pk).exists(), what="the old job to be pruned")
    assert remaining(old, new) == {new.pk}
    assert Job.objects.count() == 1  # upkeep is not tracked: the task added no job of its own


def test_policy_reads_the_settings_unless_given_days(settings):
    settings.JOB_RETENTION_DAYS, settings.JOB_FAILED_RETENTION_DAYS, settings.JOB_PRUNE_BATCH_SIZE = 3, 4, 5
    assert Policy.from_settings() == Policy(timedelta(days=3), timedelta(days=4), 5)
    assert Policy.from_settings(days=0, failed_days=1) == Policy(timedelta(0), timedelta(days=1), 5)


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("JOB_RETENTION_DAYS", "thirty", "JOB_RETENTION_DAYS='thirty' is not a whole number"),
        ("JOB_FAILED_RETENTION_DAYS", "0", "JOB_FAILED_RETENTION_DAYS=0 is below the minimum of 1"),
        ("JOB_PRUNE_BATCH_SIZE", "100000", "JOB_PRUNE_BATCH_SIZE=100000 is above the maximum of 10000"),
        ("JOB_PRUNE_INTERVAL_SECONDS", "5", "JOB_PRUNE_INTERVAL_SECONDS=5 is below the minimum of 60"),
    ],
)
def test_a_malformed_retention_setting_stops_start_up(tmp_path, variable, value, message):
    result = start(tmp_path, SECRET_KEY="x" * 50, **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr
