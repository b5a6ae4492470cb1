"""In a real browser: the alert form shows the chosen schedule's fields, and "Now"/"Today" read the alert's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from alerts.models import Alert
from tests.alerts.factories import ContactFactory
from tests.pages.conftest import EXPECT_TIMEOUT_MS, PASSWORD, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

# 10:00 UTC: 12:00 in Paris (summer time), 19:00 in Tokyo, 06:00 in the browser's New York.
T = datetime(2030, 7, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def admin_page(chromium, live_server, django_user_model):
    """A tab in New York (neither the server's UTC nor the alerts' zones), logged in to the admin."""
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="America/New_York", locale="en-US"
    )
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    context.close()


def open_add_form(page, base_url: str, at: datetime = T) -> None:
    page.clock.set_fixed_time(at)
    page.goto(f"{base_url}/admin/alerts/alert/add/")
    page.wait_for_load_state("load")


def shortcut(page, field: str, name: str):
    """The "Now" or "Today" link beside ``field``'s input."""
    return page.locator(f"#id_{field} + .datetimeshortcuts a", has_text=name)


def test_now_and_today_fill_the_current_time_in_the_alert_timezone(admin_page, live_server):
    from playwright.sync_api import expect

    page = admin_page
    open_add_form(page, live_server.url)
    page.select_option("#id_schedule_kind", "once")
    page.select_option("#id_timezone", "Europe/Paris")
    shortcut(page, "send_at_0", "Today").click()
    shortcut(page, "send_at_1", "Now").click()
    expect(page.locator("#id_send_at_0")).to_have_value("2030-07-01")
    expect(page.locator("#id_send_at_1")).to_have_value("12:00:00")
    expect(page.locator("#id_send_at_1 ~ .timezonewarning")).to_have_text(
        "Note: times are read in Europe/Paris, 6 hours ahead of your browser."
    )

    page.select_option("#id_timezone", "Asia/Tokyo")
    shortcut(page, "send_at_1", "Now").click()
    expect(page.locator("#id_send_at_1")).to_have_value("19:00:00")
    page.select_option("#id_timezone", "Australia/Lord_Howe")  # +10:30 in July
    shortcut(page, "send_at_1", "Now").click()
    expect(page.locator("#id_send_at_1")).to_have_value("20:30:00")


def test_a_base_filled_with_now_is_saved_as_that_instant(admin_page, live_server):
    from playwright.sync_api import expect

    page = admin_page
    # Near the real clock, so that the session of the log-in has not expired.
    now = timezone.now().replace(second=0, microsecond=0)
    ContactFactory(name="Ada")
    open_add_form(page, live_server.url, now)
    page.fill("#id_name", "Water the plants")
    page.fill("#id_message", "Hi {{ contact.name }}")
    page.select_option("#id_recipients_from", label="Ada")
    page.click("#id_recipients_add")
    page.select_option("#id_timezone", "Europe/Paris")
    page.select_option("#id_schedule_kind", "relative")
    shortcut(page, "relative_base_0", "Today").click()
    shortcut(page, "relative_base_1", "Now").click()
    page.fill("#id_relative_spec", "+30 minutes")
    with time_machine.travel(now, tick=True):  # the server's clock agrees with the browser's
        page.click("input[name=_save]")
        expect(page.locator(".messagelist .success")).to_be_visible()
    alert = Alert.objects.get()
    assert (alert.relative_base, alert.send_at) == (now, now + timedelta(minutes=30))


def test_only_the_chosen_schedule_kind_fields_show(admin_page, live_server):
    from playwright.sync_api import expect

    page = admin_page
    open_add_form(page, live_server.url)
    every = ["#id_send_at_0", "#id_relative_spec", "#id_crontab", "#id_interval_every"]
    for chosen, visible in [
        ("once", "#id_send_at_0"),
        ("relative", "#id_relative_spec"),
        ("crontab", "#id_crontab"),
        ("interval", "#id_interval_every"),
    ]:
        page.select_option("#id_schedule_kind", chosen)
        for field in every:
            if field == visible:
                expect(page.locator(field)).to_be_visible()
            else:
                expect(page.locator(field)).to_be_hidden()
    expect(page.locator("#id_starts_at_0")).to_be_visible()  # the interval's start
    expect(page.locator("#id_expires_at_0")).to_be_visible()  # every kind's expiry
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"alert form height with the interval's fields: {height} px")
    screenshot(page, "alert-form-interval")


def test_a_field_with_an_error_stays_visible_when_another_kind_is_chosen(admin_page, live_server):
    from playwright.sync_api import expect

    page = admin_page
    open_add_form(page, live_server.url)
    page.select_option("#id_schedule_kind", "crontab")
    page.fill("#id_crontab", "0 25 * * *")
    page.click("input[name=_save]")
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator("#id_crontab")).to_be_visible()
    page.select_option("#id_schedule_kind", "once")
    expect(page.locator("#id_crontab")).to_be_visible()
    expect(page.locator("#id_relative_spec")).to_be_hidden()
