"""In a real browser: the workers page shows a real worker, its queues and the chart (screenshot saved)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from api import workers
from scheduler.models import State
from tests.conftest import wait_until
from tests.factories import JobFactory
from tests.pages.conftest import browser_page, chromium, log_in, monkeypatch_module, screenshot  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("broker", ["embedded"], indirect=True),
    pytest.mark.usefixtures("worker"),
]


def test_an_operator_sees_the_workers_queues_and_jobs_per_minute(browser_page, live_server, django_user_model, worker):  # noqa: F811
    from playwright.sync_api import expect

    workers.forget()
    django_user_model.objects.create_superuser("operator", password="pw-for-tests-only")
    now = timezone.now()
    for minutes_ago in (2, 2, 5, 30):
        JobFactory(state=State.SUCCEEDED, modified_at=now - timedelta(minutes=minutes_ago), worker=worker.hostname)
    JobFactory(state=State.FAILED, modified_at=now - timedelta(minutes=5))
    log_in(browser_page, live_server.url, "operator")

    browser_page.goto(f"{live_server.url}/jobs/workers/")
    expect(browser_page.locator("h1")).to_have_text("Workers and queues")
    # The first view does not wait for the workers; the page fills in by itself once they have answered.
    expect(browser_page.locator(".workers .worker-name")).to_contain_text([worker.hostname])
    expect(browser_page.locator(".queues tbody tr")).to_have_count(len(settings.JOB_QUEUES))
    expect(browser_page.locator(".queues tbody")).to_contain_text("webhook")
    expect(browser_page.locator("svg.jobs-chart rect.succeeded")).to_have_count(3)
    expect(browser_page.locator("svg.jobs-chart rect.failed")).to_have_count(1)
    screenshot(browser_page, "workers")
    wait_until(lambda: not workers._refreshing, what="the background inspect to finish")
    workers.forget()
