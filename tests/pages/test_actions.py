"""Cancel, retry or run now, delete, cancel all, and bulk actions: confirmation first, a message after."""

from __future__ import annotations

import pytest

from scheduler import services
from scheduler.models import EventKind, Job, State
from tests.pages.conftest import page_text

pytestmark = pytest.mark.django_db


def state_of(job: Job) -> str:
    return Job.objects.get(pk=job.pk).state


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_cancelling_asks_first_then_cancels_and_says_so(staff_client, make_job):
    job = make_job(State.SCHEDULED, label="Water the plants")
    confirmation = page_text(staff_client.get(f"/jobs/{job.pk}/cancel/"))
    assert f"Cancel job #{job.pk}?" in confirmation and "Water the plants" in confirmation
    assert f'action="/jobs/{job.pk}/cancel/"' in confirmation
    assert state_of(job) == State.SCHEDULED

    response = staff_client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert response.redirect_chain == [(f"/jobs/{job.pk}/", 302)]
    assert messages_of(response) == [f"Job #{job.pk} cancelled."]
    assert state_of(job) == State.CANCELLED
    assert job.events.get(kind=EventKind.CANCELLED).message == "cancelled by ops"


def test_cancelling_a_job_that_is_over_cancels_nothing(staff_client, make_job):
    job = make_job(State.SUCCEEDED)
    response = staff_client.get(f"/jobs/{job.pk}/cancel/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} is succeeded: there is nothing to cancel."]
    response = staff_client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} was no longer waiting or running: nothing was cancelled."]
    assert state_of(job) == State.SUCCEEDED


def test_retrying_a_failed_job_gives_it_another_attempt_whose_outcome_is_news(staff_client, make_job):
    job = make_job(State.FAILED, attempts=1, max_attempts=1, seen=True)
    response = staff_client.post(f"/jobs/{job.pk}/run-now/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} will run again now."]
    job.refresh_from_db()
    assert (job.state, job.max_attempts, job.seen) == (State.SCHEDULED, 2, False)
    assert job.events.filter(kind=EventKind.SCHEDULED, message="retry requested").exists()


def test_a_job_waiting_in_the_database_can_be_run_now(staff_client, make_job):
    job = make_job(State.SCHEDULED)
    html = page_text(staff_client.get(f"/jobs/{job.pk}/"))
    assert "Run now</button>" in html and "Retry now" not in html
    response = staff_client.post(f"/jobs/{job.pk}/run-now/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} will run now."]
    assert Job.objects.get(pk=job.pk).eta < job.eta


def test_a_running_job_cannot_be_run_now(staff_client, make_job):
    job = make_job(State.RUNNING)
    assert "Run now" not in page_text(staff_client.get(f"/jobs/{job.pk}/"))
    response = staff_client.post(f"/jobs/{job.pk}/run-now/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} is running: it cannot be run now."]
    assert state_of(job) == State.RUNNING


@pytest.mark.parametrize(
    "state, buttons",
    [
        (State.SCHEDULED, {"Run now", "Cancel…"}),
        (State.QUEUED, {"Cancel…"}),
        (State.RUNNING, {"Cancel…"}),
        (State.SUCCEEDED, {"Delete…"}),
        (State.FAILED, {"Retry now", "Delete…"}),
        (State.CANCELLED, {"Delete…"}),
        (State.ABORTED, {"Delete…"}),
    ],
)
def test_a_job_page_offers_the_actions_its_state_allows(staff_client, make_job, state, buttons):
    job = make_job(state, published_at=None if state == State.SCHEDULED else make_job().modified_at)
    html = page_text(staff_client.get(f"/jobs/{job.pk}/"))
    actions = html.split('<div class="actions">')[1].split("</div>")[0]
    offered = {name for name in ("Run now", "Retry now", "Cancel…", "Delete…") if name in actions}
    assert offered == buttons


def test_deleting_asks_first_then_deletes_and_returns_to_the_list(staff_client, make_job):
    job = make_job(State.SUCCEEDED)
    confirmation = page_text(staff_client.get(f"/jobs/{job.pk}/delete/"))
    assert f"Delete job #{job.pk}?" in confirmation
    assert Job.objects.filter(pk=job.pk).exists()
    response = staff_client.post(f"/jobs/{job.pk}/delete/", {"next": "/jobs/?state=succeeded"}, follow=True)
    assert response.redirect_chain == [("/jobs/?state=succeeded", 302)]
    assert messages_of(response) == [f"Job #{job.pk} deleted."]
    assert not Job.objects.filter(pk=job.pk).exists()


def test_deleting_a_job_that_is_not_over_is_refused(staff_client, make_job):
    job = make_job(State.RUNNING)
    response = staff_client.post(f"/jobs/{job.pk}/delete/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} is running: cancel it before deleting it."]
    assert state_of(job) == State.RUNNING


def test_deleting_a_job_that_is_gone_says_so(staff_client):
    response = staff_client.post("/jobs/4242/delete/", follow=True)
    assert messages_of(response) == ["Job #4242 no longer exists."]


def test_a_next_that_leaves_the_site_is_ignored(staff_client, make_job):
    job = make_job(State.SUCCEEDED)
    response = staff_client.post(f"/jobs/{job.pk}/delete/", {"next": "https://evil.example/"})
    assert response.url == "/jobs/"


def test_cancel_all_shows_how_many_jobs_it_will_cancel_and_cancels_them(staff_client, make_job):
    active = [make_job(state) for state in (State.SCHEDULED, State.QUEUED, State.RETRYING, State.RUNNING)]
    done = make_job(State.SUCCEEDED)
    confirmation = page_text(staff_client.get("/jobs/cancel-all/"))
    assert "Cancel all 4 waiting and running jobs?" in confirmation and "Cancel 4 jobs</button>" in confirmation
    assert all(state_of(job) != State.CANCELLED for job in active)

    response = staff_client.post("/jobs/cancel-all/", follow=True)
    assert messages_of(response) == ["Cancelled 4 jobs."]
    assert {state_of(job) for job in active} == {State.CANCELLED}
    assert state_of(done) == State.SUCCEEDED


def test_cancel_all_terminates_running_jobs_only_when_asked(staff_client, make_job, monkeypatch):
    calls = []
    monkeypatch.setattr(services, "jobs_cancel_all", lambda **kwargs: calls.append(kwargs) or 0)
    make_job(State.RUNNING)
    staff_client.post("/jobs/cancel-all/")
    staff_client.post("/jobs/cancel-all/", {"terminate": "on"})
    assert [call["terminate"] for call in calls] == [False, True]
    assert calls[0]["reason"] == "cancelled by ops (cancel all)"


def test_cancel_all_with_nothing_active_says_there_is_nothing_to_cancel(staff_client, make_job):
    make_job(State.SUCCEEDED)
    response = staff_client.get("/jobs/cancel-all/", follow=True)
    assert messages_of(response) == ["No job is waiting or running: there is nothing to cancel."]


def test_bulk_cancel_confirms_which_jobs_it_will_cancel_then_cancels_them(staff_client, make_job):
    waiting, running, done = make_job(State.SCHEDULED), make_job(State.RUNNING), make_job(State.SUCCEEDED)
    form = {"action": "cancel", "ids": [waiting.pk, running.pk, done.pk], "next": "/jobs/?state=active"}
    confirmation = staff_client.post("/jobs/bulk/", form)
    html = page_text(confirmation)
    assert "Cancel 2 of the 3 selected jobs?" in html and "(left alone)" in html
    assert state_of(waiting) == State.SCHEDULED

    response = staff_client.post("/jobs/bulk/", {**form, "confirmed": "on"}, follow=True)
    assert response.redirect_chain == [("/jobs/?state=active", 302)]
    assert messages_of(response) == ["Cancelled 2 jobs. 1 left alone (no longer active)."]
    assert [state_of(job) for job in (waiting, running, done)] == [State.CANCELLED, State.CANCELLED, State.SUCCEEDED]


def test_bulk_delete_deletes_the_jobs_that_are_over_and_keeps_the_others(staff_client, make_job):
    done, failed, running = make_job(State.SUCCEEDED), make_job(State.FAILED), make_job(State.RUNNING)
    form = {"action": "delete", "ids": [done.pk, failed.pk, running.pk, 999999]}
    assert "Delete 2 of the 4 selected jobs?" in page_text(staff_client.post("/jobs/bulk/", form))
    response = staff_client.post("/jobs/bulk/", {**form, "confirmed": "on"}, follow=True)
    assert messages_of(response) == ["Deleted 2 jobs. 1 left alone (still waiting or running, kept)."]
    assert list(Job.objects.values_list("pk", flat=True)) == [running.pk]


def test_bulk_actions_without_a_selection_say_what_to_do(staff_client):
    response = staff_client.post("/jobs/bulk/", {"action": "cancel"}, follow=True)
    assert messages_of(response) == ["Select at least one job first."]


@pytest.mark.parametrize("ids", [["x"], ["-1"]])
def test_bulk_actions_refuse_ids_that_are_not_job_numbers(staff_client, ids):
    response = staff_client.post("/jobs/bulk/", {"action": "cancel", "ids": ids}, follow=True)
    assert messages_of(response) == ["Select jobs by their numbers."]


def test_the_list_offers_bulk_actions_and_cancel_all(staff_client, make_job):
    job = make_job()
    html = page_text(staff_client.get("/jobs/?state=scheduled"))
    assert '<form method="post" action="/jobs/bulk/"' in html
    assert '<input type="hidden" name="next" value="/jobs/?state=scheduled">' in html
    assert f'<input type="checkbox" name="ids" value="{job.pk}"' in html
    assert 'href="/jobs/cancel-all/">Cancel all…</a>' in html


def test_a_job_that_needs_attention_can_be_resent(staff_client, make_job):
    job = make_job(State.ATTENTION, attempts=1, max_attempts=1, seen=True)
    page = page_text(staff_client.get(f"/jobs/{job.pk}/"))
    assert "Resend</button>" in page and "Mark settled</button>" in page
    response = staff_client.post(f"/jobs/{job.pk}/run-now/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} will run again now."]
    job.refresh_from_db()
    assert (job.state, job.max_attempts) == (State.SCHEDULED, 2)
    assert job.events.filter(kind=EventKind.SCHEDULED, message="resend requested").exists()


def test_a_job_that_needs_attention_can_be_marked_settled(staff_client, make_job):
    job = make_job(State.ATTENTION)
    response = staff_client.post(f"/jobs/{job.pk}/settle/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} marked settled."]
    assert state_of(job) == State.SUCCEEDED
    assert job.events.get(kind=EventKind.SETTLED).message == "settled by ops"
    response = staff_client.post(f"/jobs/{job.pk}/settle/", follow=True)
    assert messages_of(response) == [f"Job #{job.pk} is succeeded: nothing to settle."]
