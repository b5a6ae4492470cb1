"""In a real browser, against a live server and a real worker: an operator follows jobs live."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.models import EventKind, Job, JobEvent, State
from tests.conftest import wait_until
from tests.pages.conftest import PASSWORD, T0, log_in
from tests.testapp.tasks import patient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # One broker is enough to prove the pages; the engine's own tests cover every broker.
    pytest.mark.parametrize("broker", ["embedded"], indirect=True),
    pytest.mark.usefixtures("worker"),
]


def test_an_operator_logs_in_through_the_admin_login_form_and_sees_the_jobs(browser_page, live_server, staff):
    from playwright.sync_api import expect

    log_in(browser_page, live_server.url, staff.username)
    expect(browser_page.locator("h1")).to_have_text("Jobs")
    expect(browser_page.locator("#job-counters .counter-active")).to_contain_text("0 active")
    expect(browser_page.locator(".site-header .user")).to_have_text("ops")


def test_the_list_follows_a_job_from_waiting_to_running_to_succeeded_without_a_reload(operator_page, live_server):
    from playwright.sync_api import expect

    page = operator_page
    job = patient.enqueue_with(args=[2.5], eta=timezone.now() + timedelta(seconds=2), label="Water the plants")
    page.reload()
    page.evaluate("window.notReloaded = true")
    row = page.locator(f'tr[data-job="{job.pk}"]')
    expect(row).to_have_attribute("data-state", "queued")
    expect(row).to_have_class("row-active")
    expect(page.locator("#job-table")).to_have_attribute("data-live", "on")

    expect(row).to_have_attribute("data-state", "running")
    expect(row.locator(".badge")).to_have_text("running")
    expect(page.locator("#job-counters .counter-active")).to_contain_text("1 active")

    expect(row).to_have_attribute("data-state", "succeeded")
    expect(row).to_have_class("row-unseen row-unseen-succeeded")
    expect(page.locator("#job-counters .counter-succeeded")).to_contain_text("1 succeeded")
    expect(page.locator("#job-table")).not_to_have_attribute("data-live", "on")  # nothing active: polling stopped
    assert page.evaluate("window.notReloaded") is True

    row.locator(".col-task a").click()
    expect(page).to_have_url(f"{live_server.url}/jobs/{job.pk}/")
    kinds = page.locator(".timeline tbody tr td:nth-child(2)")
    expect(kinds).to_have_text(["scheduled", "sent", "received", "started", "succeeded"])
    expect(page.locator("#job-counters .counter-succeeded")).to_contain_text("0 succeeded")
    assert Job.objects.get(pk=job.pk).seen


def test_a_job_page_follows_the_job_live_and_shows_its_timeline(operator_page, live_server):
    from playwright.sync_api import expect

    page = operator_page
    job = patient.enqueue(3)
    wait_until(lambda: Job.objects.get(pk=job.pk).progress, what="the job to make progress")
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("h1 .badge")).to_have_text("running")
    expect(page.locator("progress")).to_be_visible()
    expect(page.locator(".status-message")).to_contain_text("step")
    elapsed = page.locator("[data-elapsed]").first
    first = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first)  # the clock ticks between polls

    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=20_000)
    expect(page.locator(".timeline tbody tr td:nth-child(2)")).to_have_text(
        ["scheduled", "sent", "started", "succeeded"]
    )
    expect(page.locator(".timeline tr.event-started td:nth-child(3)")).not_to_be_empty()  # the worker's host
    expect(page.locator("#job-body")).not_to_have_attribute("data-live", "on")
    expect(page.locator(".actions")).to_contain_text("Delete…")
    assert page.evaluate("window.notReloaded") is True
    wait_until(lambda: Job.objects.get(pk=job.pk).seen, what="the watched job to be seen")
    assert job.events.filter(kind=EventKind.SUCCEEDED).exists()


def test_times_are_shown_in_the_viewers_timezone_with_utc_on_hover(operator_page, live_server):
    from playwright.sync_api import expect

    from tests.factories import JobFactory

    page = operator_page
    job = JobFactory(state=State.CANCELLED, eta=T0, modified_at=T0)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    eta = page.locator(f'time[datetime="{T0.isoformat()}"]').first
    expect(eta).to_have_attribute("title", "2030-06-01 12:00:00 UTC")
    expect(eta).to_contain_text("14:00:00")  # Paris, summer time
    expect(eta).to_contain_text("CEST")  # labelled
    expect(page.locator("[data-viewer-timezone]")).to_have_text(" (Europe/Paris)")


def test_times_in_messages_and_in_the_admin_show_in_one_zone_labelled(browser_page, live_server, django_user_model):
    from playwright.sync_api import expect

    from tests.factories import JobFactory

    django_user_model.objects.create_superuser("chief", password=PASSWORD)
    page = browser_page
    log_in(page, live_server.url, "chief")
    job = JobFactory(state=State.QUEUED, eta=T0, modified_at=T0)
    JobEvent.objects.create(job=job, kind=EventKind.SCHEDULED, at=T0, message="due 2030-06-01 12:00:00 UTC")
    JobEvent.objects.create(job=job, kind=EventKind.RECEIVED, at=T0, message="held until 2030-06-01T12:00:00+00:00")
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    messages = page.locator(".timeline td[data-label=Message]")
    expect(messages.nth(0)).to_have_text(re.compile(r"^due .*14:00:00 CEST$"))
    expect(messages.nth(1)).to_have_text(re.compile(r"^held until .*14:00:00 CEST$"))
    page.goto(f"{live_server.url}/admin/scheduler/job/")
    expect(page.locator("#result_list td.field-eta")).to_have_text(re.compile(r"14:00:00 CEST$"))
