"""Escalation in the admin and the API: policies with inline steps, their validation, and the alert's choice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import ProtectedError
from django.utils import timezone

from alerts.models import Alert, EscalationPolicy, Occurrence, ScheduleKind
from scheduler.models import Job
from tests.alerts.admin_forms import alert_form, errors_of
from tests.alerts.factories import AlertFactory, ContactFactory, escalation_policy

pytestmark = pytest.mark.django_db

ADD = "/admin/alerts/escalationpolicy/add/"


def policy_form(*steps: dict, **fields) -> dict:
    data = {
        "name": "On call",
        "repeat": "0",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "1",
        "steps-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, step in enumerate(steps):
        values = {"position": str(index + 1), "send_sms": "on", "wait_minutes": "5", **step}
        data.update({f"steps-{index}-{name}": value for name, value in values.items() if value is not None})
    return data


def step_errors(response) -> tuple[list, list]:
    formset = response.context["inline_admin_formsets"][0].formset
    return formset.errors, formset.non_form_errors()


def test_a_policy_is_saved_with_its_steps_in_order(admin_client):
    ada, bob = ContactFactory(name="Ada"), ContactFactory(name="Bob")
    response = admin_client.post(
        ADD,
        policy_form(
            {"notify_alert_recipients": "on", "wait_minutes": "5"},
            {"contacts": [ada.pk, bob.pk], "send_email": "on", "send_sms": None, "wait_minutes": "10"},
            repeat="2",
        ),
    )

    assert response.status_code == 302, errors_of(response)
    policy = EscalationPolicy.objects.get()
    assert policy.repeat == 2
    first, second = policy.steps.order_by("position")
    assert (first.notify_alert_recipients, first.channels, first.wait_minutes) == (True, ["sms"], 5)
    assert set(second.contacts.all()) == {ada, bob} and second.channels == ["email"] and second.wait_minutes == 10
    listing = admin_client.get("/admin/alerts/escalationpolicy/").content.decode()
    assert "sms, wait 5 min → email, wait 10 min" in listing


def test_a_step_that_notifies_nobody_is_refused(admin_client):
    response = admin_client.post(ADD, policy_form({}))
    assert response.status_code == 200
    errors, _ = step_errors(response)
    assert "This step notifies nobody" in str(errors[0])
    assert not EscalationPolicy.objects.exists()


def test_a_step_without_a_channel_is_refused(admin_client):
    response = admin_client.post(ADD, policy_form({"notify_alert_recipients": "on", "send_sms": None}))
    assert response.status_code == 200
    errors, _ = step_errors(response)
    assert "Choose at least one channel for this step" in str(errors[0])


@pytest.mark.parametrize(
    ("fields", "step", "message"),
    [
        ({"repeat": "-1"}, {}, "Ensure this value is greater than or equal to 0."),
        ({"repeat": "many"}, {}, "Enter a whole number."),
        ({}, {"wait_minutes": "-5"}, "Ensure this value is greater than or equal to 0."),
        ({}, {"position": "0"}, "Ensure this value is greater than or equal to 1."),
    ],
    ids=["negative-repeat", "repeat-not-a-number", "negative-wait", "position-zero"],
)
def test_bad_numbers_are_form_errors(admin_client, fields, step, message):
    response = admin_client.post(ADD, policy_form({"notify_alert_recipients": "on", **step}, **fields))
    assert response.status_code == 200
    errors, _ = step_errors(response)
    assert message in str(errors_of(response)) + str(errors)
    assert not EscalationPolicy.objects.exists()


def test_a_policy_needs_a_step_and_distinct_positions(admin_client):
    response = admin_client.post(ADD, policy_form())
    assert response.status_code == 200
    assert step_errors(response)[1] == ["A policy needs at least one step."]

    twice = policy_form({"notify_alert_recipients": "on"}, {"notify_alert_recipients": "on", "position": "1"})
    response = admin_client.post(ADD, twice)
    assert response.status_code == 200
    assert step_errors(response)[1] == ["Please correct the duplicate data for position."]
    assert not EscalationPolicy.objects.exists()


def test_an_alert_walks_the_policy_chosen_in_its_form(admin_client):
    policy = escalation_policy({"notify_alert_recipients": True, "wait_minutes": 5}, {"notify_alert_recipients": True})
    response = admin_client.post(
        "/admin/alerts/alert/add/", alert_form(escalation_policy=policy.pk, send_at_0="2030-06-01")
    )
    assert response.status_code == 302, errors_of(response)
    alert = Alert.objects.get()
    assert alert.escalation_policy == policy
    assert sorted(Job.objects.values_list("label", flat=True)) == [
        "Server room too hot · sms · step 1 of 2",
        "Server room too hot · sms · step 2 of 2",
    ]


def test_an_alert_refuses_a_policy_without_steps(admin_client):
    empty = EscalationPolicy.objects.create(name="Empty")
    response = admin_client.post("/admin/alerts/alert/add/", alert_form(escalation_policy=empty.pk))
    assert response.status_code == 200
    assert errors_of(response)["escalation_policy"] == ["The policy “Empty” has no step yet: give it one first."]


def test_a_policy_in_use_cannot_be_deleted(admin_client):
    policy = escalation_policy({"notify_alert_recipients": True})
    AlertFactory(escalation_policy=policy, name="Boiler")
    with pytest.raises(ProtectedError):
        policy.delete()
    page = admin_client.get(f"/admin/alerts/escalationpolicy/{policy.pk}/delete/").content.decode()
    assert "Boiler" in page and "Cannot delete" in page


def test_the_api_sets_and_keeps_an_alerts_policy(admin_client):
    policy = escalation_policy({"notify_alert_recipients": True})
    alert = AlertFactory()
    url = f"/api/v1/alerts/{alert.pk}/"

    response = admin_client.patch(url, {"escalation_policy": policy.pk}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["escalation_policy"] == policy.pk
    response = admin_client.patch(url, {"name": "Renamed"}, content_type="application/json")
    assert response.json()["escalation_policy"] == policy.pk, "a patch keeps what it does not name"

    response = admin_client.patch(url, {"escalation_policy": 999999}, content_type="application/json")
    assert response.status_code == 400
    assert "escalation_policy" in response.json()
    response = admin_client.patch(url, {"escalation_policy": "soon"}, content_type="application/json")
    assert response.status_code == 400 and response.json()["escalation_policy"] == ["A valid integer is required."]


def test_the_api_acknowledge_says_when_no_occurrence_waits(admin_client):
    policy = escalation_policy({"notify_alert_recipients": True})
    alert = AlertFactory(
        schedule_kind=ScheduleKind.CRONTAB, crontab="0 9 * * *", send_at=None, escalation_policy=policy
    )
    response = admin_client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 409
    assert response.json()["detail"] == f"“{alert.name}” has no occurrence waiting for an acknowledgement."


def test_the_api_acknowledges_the_latest_occurrence_of_a_recurring_alert(admin_client):
    policy = escalation_policy({"notify_alert_recipients": True})
    alert = AlertFactory(
        schedule_kind=ScheduleKind.CRONTAB, crontab="0 9 * * *", send_at=None, escalation_policy=policy
    )
    older = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now() - timedelta(days=1))
    latest = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now() - timedelta(minutes=2))

    response = admin_client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 200, response.content
    assert response.json()["alert"]["state"] == "active"
    latest.refresh_from_db()
    older.refresh_from_db()
    assert latest.acknowledged_by == "api:root" and older.acknowledged_at is None

    again = admin_client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert again.status_code == 409
