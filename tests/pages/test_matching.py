"""Batch actions on every job the list's filters match: a count to confirm first, then each job in turn."""

from __future__ import annotations

import pytest

from scheduler import matching
from scheduler.models import Job, State
from tests.pages.conftest import page_text

pytestmark = pytest.mark.django_db


def states(*jobs: Job) -> list[str]:
    return [Job.objects.get(pk=job.pk).state for job in jobs]


def test_retrying_what_matches_counts_first_then_retries_only_the_failed_ones_of_the_filter(staff_client, make_job):
    failed = [make_job(State.FAILED, task_name="alerts.deliver_sms") for _ in range(2)]
    other_task = make_job(State.FAILED, task_name="alerts.deliver_email")
    waiting = make_job(State.SCHEDULED, task_name="alerts.deliver_sms")

    confirmation = page_text(staff_client.get("/jobs/matching/retry/?task=alerts.deliver_sms"))
    assert "Retry 2 jobs matching the filters?" in confirmation
    assert states(*failed) == [State.FAILED, State.FAILED], "nothing happens before the confirmation"

    response = staff_client.post("/jobs/matching/retry/?task=alerts.deliver_sms", follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Retrying 2 jobs matching the filters."]
    assert states(*failed) == [State.SCHEDULED, State.SCHEDULED], "due now, published once committed"
    assert states(other_task, waiting) == [State.FAILED, State.SCHEDULED]


def test_cancelling_what_matches_cancels_the_active_jobs_of_the_filter_only(staff_client, make_job):
    waiting = make_job(State.SCHEDULED, label="Water the plants")
    running = make_job(State.RUNNING, label="Water the plants")
    done = make_job(State.SUCCEEDED, label="Water the plants")
    other = make_job(State.SCHEDULED, label="Feed the cat")

    assert "Cancel 2 jobs matching the filters?" in page_text(staff_client.get("/jobs/matching/cancel/?q=plants"))
    staff_client.post("/jobs/matching/cancel/?q=plants")
    assert states(waiting, running, done, other) == [State.CANCELLED, State.CANCELLED, State.SUCCEEDED, State.SCHEDULED]


def test_a_range_to_the_last_day_of_the_calendar_matches_every_job_changed_since_its_start(staff_client, make_job):
    job = make_job(State.SCHEDULED)
    confirmation = page_text(staff_client.get("/jobs/matching/cancel/?changed_to=9999-12-31"))
    assert "Cancel 1 job matching the filters?" in confirmation
    assert states(job) == [State.SCHEDULED]


def test_a_batch_action_needs_a_filter(staff_client, make_job):
    job = make_job(State.SCHEDULED)
    response = staff_client.post("/jobs/matching/cancel/", follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Filter the list first: a batch action applies to the jobs the filters match."
    ]
    assert staff_client.get("/jobs/matching/explode/?state=scheduled").status_code == 404
    assert states(job) == [State.SCHEDULED]


def test_staff_allowed_only_to_view_jobs_cannot_run_a_batch_action(viewer_client, make_job):
    job = make_job(State.SCHEDULED)
    assert viewer_client.post("/jobs/matching/cancel/?state=scheduled").status_code == 403
    assert "Cancel matching" not in page_text(viewer_client.get("/jobs/?state=scheduled"))
    assert states(job) == [State.SCHEDULED]


def test_more_matches_than_one_batch_takes_are_done_a_batch_at_a_time(staff_client, make_job, monkeypatch):
    monkeypatch.setattr(matching, "MAX_MATCHING", 2)
    jobs = [make_job(State.SCHEDULED, task_name="tests.echo") for _ in range(3)]
    assert "Cancel more than 2 jobs" in page_text(staff_client.get("/jobs/matching/cancel/?task=tests.echo"))
    staff_client.post("/jobs/matching/cancel/?task=tests.echo")
    assert sorted(states(*jobs)) == [State.CANCELLED, State.CANCELLED, State.SCHEDULED]


def test_the_list_offers_the_batch_actions_once_it_is_filtered(staff_client, make_job):
    make_job(State.FAILED)
    assert "Retry matching" not in page_text(staff_client.get("/jobs/"))
    assert "Retry matching" in page_text(staff_client.get("/jobs/?state=failed"))
