"""Jobs run by a real worker (in a thread) consuming from each real broker."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import ANY

import pytest
import time_machine
from celery.worker import state as worker_state
from django.conf import settings
from django.utils import timezone

from config.celery import app
from scheduler import publishing
from scheduler.models import EventKind, Job, State
from tests.conftest import wait_until
from tests.testapp.models import BodyRun
from tests.testapp.tasks import (
    asks_for_a_delay,
    broken,
    echo,
    flaky,
    no_longer_needed,
    records_with_outcome,
    returns_a_set,
    tries_with_outcome,
    unsure,
    updates_with_outcome,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def kinds(job: Job) -> list[str]:
    return list(job.events.values_list("kind", flat=True))


def test_a_job_runs_once_and_records_its_result_and_timeline():
    job = echo.enqueue_with(args=["hello"], kwargs={"suffix": "!"})
    job.wait(timeout=20)
    assert job.successful()
    assert job.result == {"echo": "hello!", "attempt": 1}
    assert (job.attempts, job.progress, job.errors) == (1, 1.0, [])
    assert job.started_at <= job.finished_at and job.runtime is not None
    assert job.worker
    assert kinds(job) == ["scheduled", "sent", "started", "succeeded"]
    assert BodyRun.objects.filter(job_id=job.pk).count() == 1


def test_a_worker_holding_an_eta_message_says_so_in_the_timeline():
    eta = timezone.now() + timedelta(seconds=1)
    job = echo.enqueue_with(args=["later"], eta=eta)
    job.wait(timeout=20)
    assert kinds(job) == ["scheduled", "sent", "received", "started", "succeeded"]
    received, started = job.events.get(kind=EventKind.RECEIVED), job.events.get(kind=EventKind.STARTED)
    assert received.hostname and received.message.startswith("held until ")
    assert received.at < eta <= started.at


def test_a_duplicated_message_runs_the_body_once():
    job = echo.enqueue("twice?")
    job.wait(timeout=20)
    done_before = worker_state.total_count.get("tests.echo", 0)
    app.send_task("tests.echo", args=[job.pk], task_id=job.celery_task_id, queue=settings.JOB_BROKER_QUEUES["default"])
    wait_until(lambda: worker_state.total_count.get("tests.echo", 0) > done_before, what="the duplicate handled")
    assert BodyRun.objects.filter(job_id=job.pk).count() == 1
    assert kinds(job).count("started") == 1


def test_a_temporary_error_retries_an_hour_later_without_holding_the_broker(settings):
    job = flaky.enqueue(2)
    wait_until(lambda: Job.objects.get(pk=job.pk).state == State.RETRYING, what="the first attempt to fail")
    job.refresh_from_db()
    assert job.eta - job.modified_at == timedelta(hours=1)
    assert job.published_at is None, "an attempt an hour away must wait in the database, not in the broker"
    assert [error["type"] for error in job.errors] == ["tests.testapp.tasks.ProviderDown"]
    assert job.errors[0]["retryable"] is True and "provider down on attempt 1" in job.errors[0]["traceback"]

    assert publishing.dispatch_due() == 0
    with time_machine.travel(job.eta - settings.JOB_ETA_HORIZON + timedelta(seconds=1)):
        assert publishing.dispatch_due() == 1
    job.refresh_from_db()
    assert job.published_at is not None and job.state == State.RETRYING
    # The attempt is published with its real ETA; bring it forward rather than wait out the hour.
    Job.objects.filter(pk=job.pk).update(eta=timezone.now(), published_at=None)
    # The worker that took the hour-away message may hold the row for a moment (its "received" event):
    # the dispatcher skips locked rows and publishes this one at its next pass.
    assert wait_until(publishing.dispatch_due, what="the dispatcher to publish the attempt") == 1

    job.wait(timeout=20)
    assert job.state == State.SUCCEEDED
    assert job.result == 2
    assert list(BodyRun.objects.filter(job_id=job.pk).values_list("attempt", flat=True)) == [1, 2]
    assert "retried" in kinds(job)


def test_a_retry_asked_for_after_no_delay_follows_at_once_not_after_the_tasks_delay():
    job = asks_for_a_delay.enqueue(0)  # a webhook's "Retry-After: 0"; the task's own delay is an hour
    wait_until(lambda: Job.objects.get(pk=job.pk).errors, what="the first attempt to fail")
    job.refresh_from_db()
    assert job.eta == job.events.get(kind=EventKind.RETRIED).at
    job.wait(timeout=20)
    assert job.state == State.SUCCEEDED and job.result == 2


def test_the_last_attempt_fails_the_job_with_every_error_kept():
    job = flaky.enqueue_with(args=[99], retry_delay=timedelta(seconds=0.2))
    job.wait(timeout=30)
    assert job.state == State.FAILED
    assert [error["attempt"] for error in job.errors] == [1, 2, 3]
    assert job.attempts == job.max_attempts == 3
    assert BodyRun.objects.filter(job_id=job.pk).count() == 3
    assert kinds(job).count("retried") == 2 and kinds(job)[-1] == "failed"


def test_a_permanent_error_fails_at_once_without_a_retry():
    job = broken.enqueue()
    job.wait(timeout=20)
    assert job.state == State.FAILED
    assert job.attempts == 1 and job.max_attempts == 5
    [error] = job.errors
    assert error["type"] == "builtins.ValueError" and error["retryable"] is False
    assert job.status_message == "ValueError: invalid input: retrying cannot help"
    assert "retried" not in kinds(job)


def test_a_body_that_finds_the_work_unneeded_ends_the_job_aborted_with_the_reason():
    job = no_longer_needed.enqueue("alert was acknowledged")
    job.wait(timeout=20)
    assert job.state == State.ABORTED
    assert job.status_message == "alert was acknowledged"
    assert job.events.get(kind=EventKind.ABORTED).message == "alert was acknowledged"


def test_a_body_can_end_its_job_as_needing_attention_instead_of_succeeded():
    job = unsure.enqueue("1 delivery may not have gone out")
    job.wait(timeout=20)
    assert job.state == State.ATTENTION and not job.successful()
    assert job.result == {"done": 0}
    assert job.status_message == "1 delivery may not have gone out (done 0 of 1)"
    assert kinds(job)[-1] == EventKind.ATTENTION


def test_a_write_asked_for_with_the_outcome_is_committed_with_it_and_only_on_success():
    done = records_with_outcome.enqueue(False)
    failed = records_with_outcome.enqueue(True)
    done.wait(timeout=20)
    failed.wait(timeout=20)
    assert (done.state, failed.state) == (State.SUCCEEDED, State.FAILED)
    assert BodyRun.objects.filter(job_id=done.pk, attempt=0).count() == 1
    assert not BodyRun.objects.filter(job_id=failed.pk).exists(), "a body that raised must not have its writes made"


def test_a_result_json_cannot_hold_is_stored_as_its_repr_and_the_job_succeeds_with_its_outcome_written():
    job = returns_a_set.enqueue()
    job.wait(timeout=20)
    assert job.state == State.SUCCEEDED
    not_json = "Object of type set is not JSON serializable"
    assert job.result == {"repr": "{'sent': 2, 'to': {1, 2}}", "not_json": not_json}
    assert job.status_message == f"sent 2 of 2 (result stored as its repr: {not_json})"
    assert sorted(BodyRun.objects.filter(job_id=job.pk).values_list("attempt", flat=True)) == [0, 1], (
        "the body ran once and its write with the outcome was made"
    )


@pytest.mark.parametrize(("then", "marks"), [("change", [0, 2]), ("miss", [1, 2, 3]), ("abort", [1, 2, 3])])
def test_an_update_tried_with_the_outcome_has_its_fallback_run_after_the_commit_only_if_it_changed_nothing(then, marks):
    job = tries_with_outcome.enqueue(then)
    job.wait(timeout=20)
    # The checks run in the order asked for: the fallback's (if any) before the last one's mark.
    wait_until(lambda: BodyRun.objects.filter(job_id=job.pk, attempt=2).exists(), what="the last check")
    assert job.state == (State.ABORTED if then == "abort" else State.SUCCEEDED)
    assert sorted(BodyRun.objects.filter(job_id=job.pk).values_list("attempt", flat=True)) == marks
    if 3 in marks:
        assert BodyRun.objects.get(job_id=job.pk, attempt=3).pid == 0, "the fallback sees the outcome committed"


def test_an_update_asked_for_with_the_outcome_is_made_with_it_and_a_check_after_it_sees_it_committed():
    done = updates_with_outcome.enqueue("return")
    failed = updates_with_outcome.enqueue("raise")
    aborted = updates_with_outcome.enqueue("abort")
    for job in (done, failed, aborted):
        job.wait(timeout=20)
    assert (done.state, failed.state, aborted.state) == (State.SUCCEEDED, State.FAILED, State.ABORTED)
    # A check runs just after its job's end is committed: a moment after the end a waiter sees.
    wait_until(lambda: BodyRun.objects.filter(job_id__in=[done.pk, aborted.pk], attempt=2).count() == 2,
               what="the checks after the outcomes")  # fmt: skip
    assert sorted(BodyRun.objects.filter(job_id=done.pk).values_list("attempt", "pid")) == [(0, ANY), (2, 0)]
    assert list(BodyRun.objects.filter(job_id=failed.pk).values_list("attempt", flat=True)) == [1], (
        "a body that raised must have neither its update made nor its check run"
    )
    assert sorted(BodyRun.objects.filter(job_id=aborted.pk).values_list("attempt", "pid")) == [(1, ANY), (2, 0)], (
        "an aborted job's checks run once its end is committed; its update is not made"
    )
