"""What the admin's alert form posts, for the tests that drive it."""

from __future__ import annotations

from alerts.models import ScheduleKind
from tests.alerts.factories import ContactFactory


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
