"""Alerts through the API: the admin form's rules and messages, the services it calls, the actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts.models import Alert, AlertState, Occurrence
from scheduler.models import State
from scheduler.selectors import jobs_for_target
from tests.alerts.factories import AlertFactory, ContactFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def alert_body(**overrides) -> dict:
    contact = overrides.pop("contact", None) or ContactFactory()
    return {
        "name": "Server room too hot",
        "message": "Hi {{ contact.name }}, the server room is above 30°C.",
        "send_sms": True,
        "recipients": [contact.pk],
        "timezone": "Europe/Paris",
        "schedule_kind": "once",
        "send_at": "2030-03-02T09:00",
    } | overrides


@time_machine.travel(NOW, tick=False)
def test_a_created_alert_reads_a_naive_time_in_its_timezone_and_gets_its_job(api):
    response = api.post("/api/v1/alerts/", alert_body(), format="json")
    assert response.status_code == 201, response.json()
    alert = Alert.objects.get(pk=response.json()["id"])
    # 09:00 in Paris in winter is 08:00 UTC.
    assert alert.send_at == datetime(2030, 3, 2, 8, 0, tzinfo=UTC)
    assert response.json()["send_at"] == "2030-03-02T08:00:00Z"
    # alert_schedule_sync ran, as after an admin save: the occurrence has its waiting job.
    assert Occurrence.objects.filter(alert=alert, scheduled_for=alert.send_at).exists()
    assert jobs_for_target(alert).filter(state=State.SCHEDULED).count() == 1


@time_machine.travel(NOW, tick=False)
def test_an_explicit_offset_is_that_instant(api):
    response = api.post("/api/v1/alerts/", alert_body(send_at="2030-03-02T09:00:00+00:00"), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["send_at"] == "2030-03-02T09:00:00Z"


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"send_at": "2030-02-01T09:00"}, "send_at", "This time has passed"),
        ({"send_sms": False, "send_email": False}, "send_sms", "Choose at least one channel"),
        ({"schedule_kind": "crontab", "crontab": "61 * * * *"}, "crontab", "minute"),
        ({"schedule_kind": "crontab", "crontab": "1,,2 * * * *"}, "crontab", "The minute field “1,,2”"),
        ({"schedule_kind": "crontab", "crontab": "0 -5 * * *"}, "crontab", "The hour field “-5”"),
        ({"schedule_kind": "relative", "relative_spec": "+2 fortnights"}, "relative_spec", "not a unit"),
        ({"schedule_kind": "relative", "relative_spec": "+9000 years"}, "relative_spec", "outside the calendar"),
        ({"schedule_kind": "relative", "relative_spec": "+3000000 days"}, "relative_spec", "outside the calendar"),
        ({"schedule_kind": "interval"}, "interval_every", "How many units"),
        (
            {"schedule_kind": "interval", "interval_every": 2**31 - 1, "interval_unit": "days"},
            "interval_every",
            "At most 3,660 days",
        ),
        (
            {"schedule_kind": "interval", "interval_every": 5_270_401, "interval_unit": "minutes"},
            "interval_every",
            "At most 5,270,400 minutes",
        ),
        ({"message": "Hi {{ contact.name"}, "message", "not closed"),
        ({"timezone": "Mars/Olympus"}, "timezone", ""),
        ({"recipients": [999999]}, "recipients", "999999"),
        ({"send_at": "tomorrow"}, "send_at", "ISO 8601"),
        ({"max_attempts": 0}, "max_attempts", ""),
    ],
)
def test_invalid_alerts_get_the_admin_forms_errors_keyed_by_field(api, overrides, field, words):
    response = api.post("/api/v1/alerts/", alert_body(**overrides), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not Alert.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_once_time_in_the_past_is_sent_now_with_send_if_past(api):
    response = api.post("/api/v1/alerts/", alert_body(send_at="2030-02-01T09:00", send_if_past=True), format="json")
    assert response.status_code == 201, response.json()
    assert Alert.objects.get().send_at == NOW


def test_a_patch_of_the_name_keeps_a_once_time_that_has_passed_since(api):
    with time_machine.travel(NOW, tick=False):
        created = api.post("/api/v1/alerts/", alert_body(), format="json").json()
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        response = api.patch(f"/api/v1/alerts/{created['id']}/", {"name": "Renamed"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"
    assert response.json()["send_at"] == created["send_at"]


@time_machine.travel(NOW, tick=False)
def test_a_patch_keeps_the_channel_texts_and_options_it_does_not_name(api):
    body = alert_body(sms_text="Short: {{ alert.name }}", email_subject="[hot] {{ alert.name }}", urgent=True,
                      fallback_to_other_channel=True)  # fmt: skip
    created = api.post("/api/v1/alerts/", body, format="json").json()
    assert (created["sms_text"], created["urgent"], created["fallback_to_other_channel"]) == (
        "Short: {{ alert.name }}", True, True,
    )  # fmt: skip
    response = api.patch(f"/api/v1/alerts/{created['id']}/", {"name": "Renamed"}, format="json")
    assert response.status_code == 200, response.json()
    alert = Alert.objects.get()
    assert (alert.sms_text, alert.email_subject, alert.urgent, alert.fallback_to_other_channel) == (
        "Short: {{ alert.name }}", "[hot] {{ alert.name }}", True, True,
    )  # fmt: skip


@time_machine.travel(NOW, tick=False)
def test_a_patch_of_the_time_replans_the_occurrence(api):
    created = api.post("/api/v1/alerts/", alert_body(), format="json").json()
    response = api.patch(f"/api/v1/alerts/{created['id']}/", {"send_at": "2030-03-05T09:00"}, format="json")
    assert response.status_code == 200, response.json()
    alert = Alert.objects.get()
    assert [o.scheduled_for for o in alert.occurrences.all()] == [datetime(2030, 3, 5, 8, 0, tzinfo=UTC)]
    assert jobs_for_target(alert).filter(state=State.CANCELLED).count() == 1


@time_machine.travel(NOW, tick=False)
def test_the_preview_lists_the_next_occurrences_of_a_crontab(api):
    alert = AlertFactory(schedule_kind="crontab", crontab="0 9 * * *", send_at=None, timezone="Europe/Paris")
    response = api.get(f"/api/v1/alerts/{alert.pk}/preview/?count=3")
    assert response.status_code == 200
    assert response.json()["occurrences"] == [
        "2030-03-02T08:00:00Z",
        "2030-03-03T08:00:00Z",
        "2030-03-04T08:00:00Z",
    ]


@time_machine.travel(NOW, tick=False)
def test_pause_resume_acknowledge_and_cancel_follow_the_services(api):
    alert = AlertFactory()
    url = f"/api/v1/alerts/{alert.pk}"
    assert api.post(f"{url}/pause/").json()["alert"]["state"] == "paused"
    assert api.post(f"{url}/pause/").status_code == 409
    assert api.post(f"{url}/resume/").json()["alert"]["state"] == "active"
    assert api.post(f"{url}/resume/").status_code == 409
    cancelled = api.post(f"{url}/cancel/").json()
    assert cancelled["alert"]["state"] == "cancelled"
    assert api.post(f"{url}/acknowledge/").status_code == 409
    assert api.post(f"{url}/send-now/").status_code == 409


@time_machine.travel(NOW, tick=False)
def test_send_now_plans_an_occurrence_now_and_duplicate_starts_paused(api):
    alert = AlertFactory()
    response = api.post(f"/api/v1/alerts/{alert.pk}/send-now/")
    assert response.status_code == 201, response.json()
    assert response.json()["occurrence"]["scheduled_for"] == "2030-03-01T12:00:00Z"
    assert response.json()["jobs"] == f"/api/v1/jobs/?target=alerts.alert:{alert.pk}"
    assert jobs_for_target(alert).filter(state__in=[State.QUEUED, State.SCHEDULED]).exists()
    copy = api.post(f"/api/v1/alerts/{alert.pk}/duplicate/")
    assert copy.status_code == 201
    assert copy.json()["state"] == AlertState.PAUSED
    assert copy.json()["recipients"] == [c.pk for c in alert.recipients.all()]


@time_machine.travel(NOW, tick=False)
def test_deleting_an_alert_cancels_its_jobs_first(api):
    created = api.post("/api/v1/alerts/", alert_body(), format="json").json()
    job = jobs_for_target(Alert.objects.get()).get()
    assert api.delete(f"/api/v1/alerts/{created['id']}/").status_code == 204
    job.refresh_from_db()
    assert job.state == State.CANCELLED
    assert not Alert.objects.exists()
