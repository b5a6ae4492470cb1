"""Fixtures of the job pages' tests: users, jobs at chosen times, and the browser."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from scheduler.models import Job, State
from tests.factories import JobFactory

PASSWORD = "pw-for-tests-only"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
# A fixed "now" far from the test run's clock, so that times in pages are predictable.
T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


JOB_PERMISSIONS = ("view_job", "change_job", "delete_job")


def staff_user(django_user_model, username: str, *codenames: str):
    """A staff account with the given permissions of the job model, no more."""
    user = django_user_model.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="scheduler", codename__in=codenames))
    return user


@pytest.fixture
def staff(django_user_model):
    """An operator: staff, allowed to cancel, run and delete jobs."""
    return staff_user(django_user_model, "ops", *JOB_PERMISSIONS)


@pytest.fixture
def viewer_client(client: Client, django_user_model) -> Client:
    """Staff allowed only to look at jobs."""
    client.force_login(staff_user(django_user_model, "viewer", "view_job"))
    return client


@pytest.fixture
def staff_client(client: Client, staff) -> Client:
    client.force_login(staff)
    return client


@pytest.fixture
def make_job() -> Callable[..., Job]:
    """A job row as the engine would have left it; each one a second more recent than the one before."""
    clock = itertools.count(1)

    def make(state: str = State.SCHEDULED, **fields) -> Job:
        modified_at = fields.pop("modified_at", T0 + timedelta(seconds=next(clock)))
        defaults: dict[str, object] = {"modified_at": modified_at, "created_at": modified_at - timedelta(minutes=5)}
        if state in (State.RUNNING, State.SUCCEEDED, State.FAILED, State.ABORTED):
            defaults |= {"attempts": 1, "started_at": modified_at - timedelta(seconds=3), "worker": "celery@w1"}
        if state in (State.SUCCEEDED, State.FAILED, State.ABORTED, State.CANCELLED):
            defaults |= {"finished_at": modified_at}
        if state in (State.SUCCEEDED, State.FAILED, State.ABORTED):
            defaults |= {"runtime": timedelta(seconds=3)}
        return JobFactory(state=state, **(defaults | fields))

    return make


def page_text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# --- The browser -----------------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright never downloads a browser of its own here
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# How long the browser waits for something to appear: polls every 1-2 s, a worker, a few seconds of work.
EXPECT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def chromium(monkeypatch_module):
    """Debian's Chromium driven by Playwright; skipped with the reason when missing, failed under CI=true."""
    from tests.conftest import require

    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        require("Playwright", f"the playwright package is not installed ({exc})")
    require("Chromium", None if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install chromium)")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    # Playwright's sync API keeps an asyncio loop running in this thread (in a greenlet), which Django's
    # async-safety check takes for async code calling the ORM. The tests' code is plain synchronous code.
    monkeypatch_module.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture
def browser_page(chromium):
    """A fresh browser tab (no cookies), desktop-sized, in a timezone other than the server's UTC."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris", locale="en-GB")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def operator_page(browser_page, live_server, django_user_model):
    """A tab where a staff user has logged in through the admin's login form, on /jobs/."""
    staff_user(django_user_model, "operator", *JOB_PERMISSIONS)
    log_in(browser_page, live_server.url, "operator")
    return browser_page


def log_in(page, base_url: str, username: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base_url}/jobs/")
    expect(page).to_have_url(f"{base_url}/admin/login/?next=/jobs/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{base_url}/jobs/")


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Saved under var/screenshots/, the test artifacts of the browser tests."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
