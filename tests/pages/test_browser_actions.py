"""In a real browser, against a live server and a real worker: an operator cancels and deletes jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.models import EventKind, Job, State
from tests.conftest import wait_until
from tests.testapp.tasks import echo, patient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["embedded"], indirect=True),
    pytest.mark.usefixtures("worker"),
]


def tomorrow(label: str) -> Job:
    return echo.enqueue_with(args=[label], eta=timezone.now() + timedelta(days=1), label=label)


def test_an_operator_cancels_a_waiting_job_after_confirming(operator_page, live_server):
    from playwright.sync_api import expect

    page = operator_page
    job = tomorrow("Water the plants")
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    expect(page.locator("h1 .badge")).to_have_text("scheduled")
    page.get_by_role("link", name="Cancel…").click()

    expect(page.locator("h1")).to_have_text(f"Cancel job #{job.pk}?")
    assert Job.objects.get(pk=job.pk).state == State.SCHEDULED  # nothing happens before the confirmation
    page.get_by_role("button", name="Cancel the job").click()

    expect(page).to_have_url(f"{live_server.url}/jobs/{job.pk}/")
    expect(page.locator(".message-success")).to_have_text(f"Job #{job.pk} cancelled.")
    expect(page.locator("h1 .badge")).to_have_text("cancelled")
    assert Job.objects.get(pk=job.pk).state == State.CANCELLED


def test_an_operator_cancels_all_jobs_after_seeing_how_many(operator_page, live_server):
    from playwright.sync_api import expect

    page = operator_page
    waiting = [tomorrow(f"Reminder {n}") for n in range(3)]
    running = patient.enqueue(30)
    wait_until(lambda: Job.objects.get(pk=running.pk).progress, what="the job to run")
    page.goto(f"{live_server.url}/jobs/")
    page.get_by_role("link", name="Cancel all…").click()

    expect(page.locator("h1")).to_have_text("Cancel all 4 waiting and running jobs?")
    page.get_by_role("button", name="Cancel 4 jobs").click()

    expect(page).to_have_url(f"{live_server.url}/jobs/")
    expect(page.locator(".message-success")).to_have_text("Cancelled 4 jobs.")
    expect(page.locator("#job-table .badge")).to_have_text(["cancelled"] * 4)
    expect(page.locator("#job-counters .counter-active")).to_contain_text("0 active")
    wait_until(lambda: running.events.filter(kind=EventKind.REVOKED).exists(), what="the running job to stop")
    assert {job.state for job in Job.objects.filter(pk__in=[j.pk for j in waiting])} == {State.CANCELLED}


def test_an_operator_deletes_a_finished_job_after_confirming(operator_page, live_server):
    from playwright.sync_api import expect

    page = operator_page
    job = echo.enqueue_with(args=["done"], label="Feed the cat")
    job.wait(timeout=20)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.get_by_role("link", name="Delete…").click()

    expect(page.locator("h1")).to_have_text(f"Delete job #{job.pk}?")
    page.get_by_role("button", name="Delete the job").click()

    expect(page).to_have_url(f"{live_server.url}/jobs/")
    expect(page.locator(".message-success")).to_have_text(f"Job #{job.pk} deleted.")
    expect(page.locator(f'tr[data-job="{job.pk}"]')).to_have_count(0)
    assert not Job.objects.filter(pk=job.pk).exists()


def test_selected_jobs_stay_selected_while_the_list_updates_and_can_be_cancelled_together(operator_page, live_server):
    from playwright.sync_api import expect

    page = operator_page
    first, second, untouched = tomorrow("First"), tomorrow("Second"), tomorrow("Untouched")
    page.goto(f"{live_server.url}/jobs/")
    page.check(f"#select-{first.pk}")
    page.check(f"#select-{second.pk}")
    expect(page.locator("[data-selected-count]")).to_have_text("2 selected")

    # Wait until a poll has replaced the table (the mark is on the old one): the checked boxes stay checked.
    page.evaluate("document.getElementById('job-table').dataset.before = 'poll'")
    page.wait_for_function("document.getElementById('job-table').dataset.before === undefined")
    expect(page.locator(f"#select-{first.pk}")).to_be_checked()
    expect(page.locator(f"#select-{second.pk}")).to_be_checked()
    expect(page.locator(f"#select-{untouched.pk}")).not_to_be_checked()

    page.get_by_role("button", name="Cancel selected…").click()
    expect(page.locator("h1")).to_have_text("Cancel 2 of the 2 selected jobs?")
    page.get_by_role("button", name="Cancel 2 jobs").click()
    expect(page.locator(".message-success")).to_have_text("Cancelled 2 jobs.")
    states = dict(Job.objects.values_list("pk", "state"))
    assert [states[job.pk] for job in (first, second, untouched)] == ["cancelled", "cancelled", "scheduled"]
