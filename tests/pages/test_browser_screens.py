"""Screenshots of the pages with jobs of every kind, on a desktop and on a phone (var/screenshots/)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.models import EventKind, Job, JobEvent, State
from tests.factories import JobFactory
from tests.pages.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
TRACEBACK = """Traceback (most recent call last):
  File "/app/scheduler/execution.py", line 141, in run
    result = _json_result(body(context, *job.args, **job.kwargs))
  File "/app/alerts/tasks.py", line 58, in deliver
    channel.notify(delivery)
  File "/app/alerts/channels/email.py", line 31, in notify
    raise TransportError(str(exc), permanent=True) from exc
alerts.channels.base.TransportError: (550, b'5.1.1 <bob@example.invalid>: Recipient address rejected')
"""


def seed() -> dict[str, Job]:
    now = timezone.now()

    def job(minutes_ago: float, state: State, label: str, **fields) -> Job:
        at = now - timedelta(minutes=minutes_ago)
        return JobFactory(state=state, label=label, modified_at=at, created_at=at - timedelta(minutes=1), **fields)

    jobs = {
        "seen": job(
            90,
            State.SUCCEEDED,
            "Weekly report · email · 4 recipients",
            task_name="alerts.deliver",
            attempts=1,
            started_at=now - timedelta(minutes=91),
            runtime=timedelta(seconds=1.4),
            seen=True,
        ),
        "aborted": job(
            70,
            State.ABORTED,
            "Water the plants · sms · 1 recipient",
            task_name="alerts.deliver",
            attempts=1,
            started_at=now - timedelta(minutes=70),
            runtime=timedelta(seconds=0.2),
            status_message="alert is paused",
        ),
        "cancelled": job(
            50,
            State.CANCELLED,
            "Team offsite · email · 9 recipients",
            task_name="alerts.deliver",
            status_message="cancelled by ops",
        ),
        "echo": job(
            40,
            State.SUCCEEDED,
            "",
            task_name="tests.echo",
            attempts=1,
            seen=True,
            started_at=now - timedelta(minutes=40),
            runtime=timedelta(seconds=0.05),
        ),
        "succeeded": job(
            20,
            State.SUCCEEDED,
            "Take medication · sms · 1 recipient",
            task_name="alerts.deliver",
            attempts=1,
            started_at=now - timedelta(minutes=20),
            runtime=timedelta(seconds=2.3),
        ),
        "failed": job(
            12,
            State.FAILED,
            "Invoice due · email · 1 recipient",
            task_name="alerts.deliver",
            attempts=2,
            max_attempts=24,
            started_at=now - timedelta(minutes=12),
            queue="email",
            runtime=timedelta(seconds=0.8),
            worker="worker@alerts-2",
            args=[41],
            kwargs={"occurrence": "2030-06-01T09:00:00+02:00"},
            status_message="TransportError: (550, b'5.1.1 <bob@example.invalid>: Recipient address rejected')",
            errors=[
                {
                    "attempt": 1,
                    "type": "alerts.channels.base.TransportError",
                    "message": "SMTP timeout",
                    "traceback": "Traceback ...\nTimeoutError: timed out\n",
                    "retryable": True,
                    "at": (now - timedelta(minutes=72)).isoformat(),
                },
                {
                    "attempt": 2,
                    "type": "alerts.channels.base.TransportError",
                    "message": "(550, b'5.1.1 <bob@example.invalid>: Recipient address rejected')",
                    "traceback": TRACEBACK,
                    "retryable": False,
                    "at": (now - timedelta(minutes=12)).isoformat(),
                },
            ],
        ),
        "retrying": job(
            6,
            State.RETRYING,
            "Server room temperature · sms · 2 recipients",
            task_name="alerts.deliver",
            attempts=1,
            max_attempts=24,
            eta=now + timedelta(minutes=54),
            status_message="ProviderDown: Twilio answered 503",
        ),
        "scheduled": job(
            4,
            State.SCHEDULED,
            "Backup check · sms · 1 recipient",
            task_name="alerts.deliver",
            eta=now + timedelta(days=1),
        ),
        "queued": job(
            2,
            State.QUEUED,
            "Standup reminder · email · 12 recipients",
            task_name="alerts.deliver",
            eta=now + timedelta(minutes=3),
            published_at=now - timedelta(minutes=2),
        ),
        "running": job(
            0.2,
            State.RUNNING,
            "Water the plants · sms, email · 3 recipients",
            task_name="alerts.deliver",
            attempts=1,
            started_at=now - timedelta(seconds=12),
            progress=0.4,
            worker="worker@alerts-1",
            eta=now - timedelta(seconds=13),
            status_message="sending sms 2 of 3",
        ),
    }
    failed = jobs["failed"]
    for minutes, kind, host, message in [
        (73, EventKind.SENT, "", "to queue email"),
        (73, EventKind.RECEIVED, "worker@alerts-2", "by worker"),
        (73, EventKind.STARTED, "worker@alerts-2", ""),
        (72, EventKind.RETRIED, "worker@alerts-2", "attempt 1 of 24 failed; next at …"),
        (13, EventKind.SENT, "", "to queue email"),
        (12.5, EventKind.STARTED, "worker@alerts-2", ""),
        (12, EventKind.FAILED, "worker@alerts-2", "permanent error: TransportError: (550, …)"),
    ]:
        JobEvent.objects.create(
            job=failed, kind=kind, at=now - timedelta(minutes=minutes), hostname=host, message=message
        )
    return jobs


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_screenshots_of_the_list_and_a_job_page_on_a_desktop_and_a_phone(operator_page, live_server):
    from playwright.sync_api import expect

    page = operator_page
    jobs = seed()
    page.goto(f"{live_server.url}/jobs/")
    expect(page.locator("#job-table tbody tr")).to_have_count(len(jobs))
    screenshot(page, "jobs-list")

    page.goto(f"{live_server.url}/jobs/{jobs['failed'].pk}/")
    page.locator("details.error").last.locator("summary").click()
    expect(page.locator("pre.traceback").last).to_be_visible()
    screenshot(page, "job-page-failed")
    page.goto(f"{live_server.url}/jobs/{jobs['running'].pk}/")
    screenshot(page, "job-page-running")

    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/jobs/")
    assert fits_the_width(page)
    screenshot(page, "jobs-list-phone")
    screenshot(page, "jobs-list-phone-top", full_page=False)
    page.goto(f"{live_server.url}/jobs/{jobs['failed'].pk}/")
    assert fits_the_width(page)
    screenshot(page, "job-page-phone")
    page.goto(f"{live_server.url}/admin/")
    screenshot(page, "admin-phone")
