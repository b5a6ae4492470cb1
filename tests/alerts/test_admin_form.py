"""The alert form and the rules that hold for every way an alert is saved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model

from alerts.models import Alert, ScheduleKind
from tests.alerts.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-only"))
    return client


def alert_form(**overrides) -> dict:
    contact = overrides.pop("contact", None) or ContactFactory()
    data = {
        "name": "Server room too hot",
        "message": "Hi {{ contact.name }}, the server room is above 30°C.",
        "send_sms": "on",
        "recipients": [contact.pk],
        "timezone": "Europe/Paris",
        "schedule_kind": ScheduleKind.ONCE,
        "send_at_0": "2026-11-22",
        "send_at_1": "09:00",
        "max_attempts": "24",
        "retry_delay": "01:00:00",
    }
    data.update(overrides)
    return data


def errors_of(response) -> dict:
    return response.context["adminform"].form.errors


# 02:30 in the second, repeated 02:00-03:00 of Berlin's autumn night (CET, UTC+1).
BERLIN_SECOND_PASS = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("+30 minutes", datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
        ("+90 minutes", datetime(2026, 10, 25, 3, 0, tzinfo=UTC)),
        ("+24 hours", datetime(2026, 10, 26, 1, 30, tzinfo=UTC)),
    ],
)
def test_a_relative_alert_saved_in_the_repeated_autumn_hour_counts_from_that_instant(admin_client, spec, expected):
    data = alert_form(schedule_kind=ScheduleKind.RELATIVE, relative_spec=spec, timezone="Europe/Berlin")
    with time_machine.travel(BERLIN_SECOND_PASS, tick=False):
        response = admin_client.post("/admin/alerts/alert/add/", data)
    assert response.status_code == 302, errors_of(response)
    alert = Alert.objects.get()
    assert (alert.relative_base, alert.send_at) == (BERLIN_SECOND_PASS, expected)
