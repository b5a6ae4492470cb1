"""Failed admin logins throttle the next attempts, per username and per client address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db
PASSWORD = "the-right-password-1"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 5
    settings.LOGIN_FAILURES_PER_ADDRESS = 20
    settings.LOGIN_THROTTLE_WINDOW = 15 * 60


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("admin", password=PASSWORD)


def log_in(username: str, password: str, *, address: str = "192.0.2.1") -> tuple[bool, str]:
    """One attempt through the admin's login form, from a fresh browser: (logged in, the page's text)."""
    client = Client(REMOTE_ADDR=address)
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session, response.content.decode()


def test_wrong_passwords_for_one_account_lock_it_for_a_while_with_a_clear_message(admin_user):
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(5):
            assert not log_in("admin", "guess")[0]
        ok, page = log_in("admin", PASSWORD)
        assert not ok, "while throttled, even the right password is refused: else guessing goes on"
        assert "Too many failed logins for this account. Try again in 15 minutes." in page
        ok, page = log_in("admin", PASSWORD, address="198.51.100.7")
        assert not ok, "the account's limit holds whatever the address"
        clock.shift(timedelta(minutes=15, seconds=1))
        assert log_in("admin", PASSWORD)[0]


def test_many_failures_from_one_address_throttle_it_and_no_other(admin_user):
    with time_machine.travel(T0, tick=False):
        for n in range(20):
            assert not log_in(f"user{n}", "guess")[0]
        ok, page = log_in("admin", PASSWORD)
        assert not ok and "Too many failed logins from your address. Try again in 15 minutes." in page
        assert log_in("admin", PASSWORD, address="198.51.100.7")[0]


def test_a_few_typos_then_the_right_password_let_the_user_in_and_start_the_count_again(admin_user):
    with time_machine.travel(T0, tick=False):
        for _ in range(4):
            assert not log_in("admin", "typo")[0]
        assert log_in("admin", PASSWORD)[0]
        for _ in range(4):
            assert not log_in("admin", "typo")[0]
        assert log_in("admin", PASSWORD)[0]


def test_the_wait_shrinks_as_failures_age_out(admin_user):
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(5):
            log_in("admin", "guess")
            clock.shift(timedelta(minutes=1))
        # Now is T0 + 5 min; the oldest failure (T0) leaves the window at T0 + 15 min: 10 minutes from now.
        assert "Try again in 10 minutes." in log_in("admin", PASSWORD)[1]
        clock.shift(timedelta(minutes=10))
        assert log_in("admin", PASSWORD)[0]
