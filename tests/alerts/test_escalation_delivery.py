"""Escalation walked by a real worker on each broker, against the local Twilio-speaking server.

The steps of a walk are minutes apart; rather than wait them out, a test makes the next step due the way an
operator's "run now" does (``job_run_now``: its ETA becomes now and it is published), once the step before
it is over, or plans the occurrence in the past so that its steps are all due (the planner's catch-up).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from alerts.escalation import Stage, occurrence_walk_status
from alerts.models import AlertState, Delivery, DeliveryState, ScheduleKind
from alerts.planner import occurrence_enqueue
from scheduler.models import ACTIVE_STATES, Job, State
from scheduler.services import job_run_now
from tests.alerts.factories import AlertFactory, ContactFactory, escalation_policy
from tests.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

BASE_URL = "https://alerts.example.com"


@pytest.fixture(autouse=True)
def fast_sms_rate(settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 1000
    settings.PUBLIC_BASE_URL = BASE_URL
    # Steps minutes away wait in the database (not held by a worker as ETA messages), so that "run now" can
    # bring them forward.
    settings.JOB_ETA_HORIZON = timedelta(minutes=1)


def step_jobs() -> list[Job]:
    return list(Job.objects.filter(unique_key__contains=":round:").order_by("eta", "pk"))


def run_now(job: Job) -> Job:
    """The step's time has come: its job runs now instead of minutes from now."""
    assert job_run_now(job_id=job.pk)
    return job.wait(timeout=30)


def sent_to(fake_twilio) -> list[str]:
    return [message.to for message in fake_twilio.messages]


def three_steps_five_minutes_apart(bob, mia):
    return escalation_policy(
        {"notify_alert_recipients": True, "wait_minutes": 5},
        {"notify_alert_recipients": True, "contacts": [bob], "wait_minutes": 5},
        {"notify_alert_recipients": True, "contacts": [mia], "wait_minutes": 5},
    )


def test_an_unacknowledged_occurrence_sends_exactly_its_three_steps(fake_twilio, admin_client):
    ada, bob, mia = (ContactFactory(name=n, phone=f"+1415555020{i}") for i, n in enumerate(["Ada", "Bob", "Mia"]))
    alert = AlertFactory(recipients=[ada], name="Boiler", escalation_policy=three_steps_five_minutes_apart(bob, mia))
    start = timezone.now()

    occurrence = occurrence_enqueue(alert=alert, scheduled_for=start)
    first, second, third = step_jobs()

    assert [job.eta - start for job in (first, second, third)] == [timedelta(minutes=m) for m in (0, 5, 10)]
    assert first.wait(timeout=30).state == State.SUCCEEDED, first.errors
    assert sent_to(fake_twilio) == [ada.phone]
    second.refresh_from_db()
    assert second.state == State.SCHEDULED, "step 2 waits for its time"
    assert str(occurrence_walk_status(occurrence)) == f"step 1 of 3, next at {start + timedelta(minutes=5):%H:%M} UTC"

    # Step 2's first SMS (Ada, by name) meets a Twilio 500: the step is retried, and Bob, sent, is not sent again.
    fake_twilio.fail_next(status=500)
    assert job_run_now(job_id=second.pk)
    wait_until(lambda: Job.objects.get(pk=second.pk).state == State.RETRYING, what="step 2 to be retried")
    assert sent_to(fake_twilio) == [ada.phone, bob.phone]
    assert run_now(second).state == State.SUCCEEDED, second.errors
    assert run_now(third).state == State.SUCCEEDED, third.errors

    assert sent_to(fake_twilio) == [ada.phone, bob.phone, ada.phone, ada.phone, mia.phone]
    assert sorted(Delivery.objects.values_list("contact__name", "escalation_round", "escalation_step", "state")) == [
        ("Ada", 1, 1, DeliveryState.SENT),
        ("Ada", 1, 2, DeliveryState.SENT),
        ("Ada", 1, 3, DeliveryState.SENT),
        ("Bob", 1, 2, DeliveryState.SENT),
        ("Mia", 1, 3, DeliveryState.SENT),
    ]
    assert str(occurrence_walk_status(occurrence)) == "step 3 of 3, no step to come, not acknowledged"
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED, "a one-off is done once its last step is"
    page = admin_client.get(f"/admin/alerts/alert/{alert.pk}/change/").content.decode()
    assert "step 3 of 3, no step to come, not acknowledged" in page


def test_acknowledged_after_step_one_the_other_steps_abort_saying_who(fake_twilio, client, admin_client):
    ada, bob, mia = (ContactFactory(name=n, phone=f"+1415555021{i}") for i, n in enumerate(["Ada", "Bob", "Mia"]))
    alert = AlertFactory(recipients=[ada], name="Boiler", escalation_policy=three_steps_five_minutes_apart(bob, mia))
    occurrence = occurrence_enqueue(alert=alert, scheduled_for=timezone.now())
    first, second, third = step_jobs()
    assert first.wait(timeout=30).state == State.SUCCEEDED, first.errors

    [message] = fake_twilio.messages
    link = message.body.split("Acknowledge: ")[1].strip()
    assert link.startswith(BASE_URL)
    response = client.post(urlsplit(link).path)
    assert response.status_code == 200 and "Its escalation stops" in response.content.decode()

    assert run_now(second).state == State.ABORTED
    assert run_now(third).state == State.ABORTED
    occurrence.refresh_from_db()
    reason = (
        f"occurrence acknowledged by contact {ada.pk} via link at {occurrence.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    for job in (second, third):
        assert job.status_message == reason
    assert len(fake_twilio.messages) == 1, "exactly one round"
    assert list(Delivery.objects.values_list("escalation_step", flat=True)) == [1]
    page = admin_client.get(f"/jobs/{third.pk}/").content.decode()
    assert f"step 1 of 3, acknowledged by contact {ada.pk} via link" in page
    assert "This job is step 3." in page


def test_an_sms_reply_stops_the_walk_of_that_occurrence_and_the_alert_recurs(fake_twilio, client):
    ada = ContactFactory(name="Ada", phone="+14155550220")
    policy = escalation_policy(
        {"notify_alert_recipients": True, "wait_minutes": 10}, {"notify_alert_recipients": True}, repeat=1
    )
    alert = AlertFactory(
        recipients=[ada],
        schedule_kind=ScheduleKind.CRONTAB,
        crontab="0 9 * * *",
        send_at=None,
        escalation_policy=policy,
    )
    occurrence = occurrence_enqueue(alert=alert, scheduled_for=timezone.now())
    first, *others = step_jobs()
    assert len(others) == 3, "2 steps, 2 rounds"
    assert first.wait(timeout=30).state == State.SUCCEEDED, first.errors

    params = {"MessageSid": "SM" + "a" * 32, "From": ada.phone, "Body": " ack "}
    path = "/alerts/twilio/inbound"
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(BASE_URL + path, params)
    response = client.post(path, params, headers={"X-Twilio-Signature": signature})
    assert "Acknowledged" in response.content.decode()

    for job in others:
        assert run_now(job).state == State.ABORTED
        assert job.status_message.startswith(f"occurrence acknowledged by SMS reply {params['MessageSid']}")
    assert len(fake_twilio.messages) == 1
    alert.refresh_from_db()
    occurrence.refresh_from_db()
    assert occurrence.acknowledged_at is not None
    assert alert.state == AlertState.ACTIVE, "tomorrow's occurrence walks the policy again"


def test_repeated_rounds_reach_the_same_contact_once_per_round_even_all_at_once(fake_twilio, fake_smtp):
    ada = ContactFactory(name="Ada", phone="+14155550230", email="ada@example.com")
    policy = escalation_policy({"notify_alert_recipients": True, "send_email": True, "wait_minutes": 1}, repeat=2)
    alert = AlertFactory(recipients=[ada], escalation_policy=policy)

    # Planned late (the planner catching up): every round is due, and the worker runs them side by side.
    occurrence_enqueue(alert=alert, scheduled_for=timezone.now() - timedelta(minutes=3))
    wait_until(lambda: not Job.objects.filter(state__in=ACTIVE_STATES).exists(), what="every round to run")

    assert {job.state for job in step_jobs()} == {State.SUCCEEDED} and len(step_jobs()) == 6
    assert sent_to(fake_twilio) == [ada.phone] * 3
    assert [m.rcpt_tos for m in fake_smtp.messages] == [["ada@example.com"]] * 3
    rounds = Delivery.objects.values_list("channel", "escalation_round", "escalation_step")
    assert sorted(rounds) == sorted((channel, r, 1) for channel in ("sms", "email") for r in (1, 2, 3))
    assert Stage(3, 1) == max(Stage.of(d) for d in Delivery.objects.all())


def test_a_step_whose_policy_lost_it_aborts_saying_so(fake_twilio):
    policy = escalation_policy({"notify_alert_recipients": True}, {"notify_alert_recipients": True})
    alert = AlertFactory(escalation_policy=policy)
    occurrence_enqueue(alert=alert, scheduled_for=timezone.now() + timedelta(minutes=30))
    policy.steps.filter(position=2).delete()

    first, second = step_jobs()
    assert run_now(first).state == State.SUCCEEDED
    assert run_now(second).state == State.ABORTED
    assert second.status_message == "the escalation policy has no step 2 any more"
    assert len(fake_twilio.messages) == 1


def test_a_step_in_quiet_hours_waits_and_an_acknowledgement_meanwhile_stops_it(fake_twilio, admin_client):
    now = timezone.now()
    ada = ContactFactory(
        name="Ada",
        phone="+14155550240",
        quiet_start=(now - timedelta(hours=1)).time(),
        quiet_end=(now + timedelta(hours=1)).time(),
    )
    bob = ContactFactory(name="Bob", phone="+14155550241")
    alert = AlertFactory(recipients=[ada, bob], escalation_policy=escalation_policy({"notify_alert_recipients": True}))
    occurrence = occurrence_enqueue(alert=alert, scheduled_for=now)
    [step] = step_jobs()
    assert step.wait(timeout=30).state == State.SUCCEEDED, step.errors
    assert sent_to(fake_twilio) == [bob.phone]

    waiting = Job.objects.get(unique_key__contains=f":contact:{ada.pk}:after:")
    assert waiting.unique_key.startswith(f"occurrence:{occurrence.pk}:sms:round:1:step:1:contact:")
    assert waiting.kwargs == {"contact_id": ada.pk, "escalation_round": 1, "escalation_step": 1}
    response = admin_client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 200, response.content

    assert run_now(waiting).state == State.ABORTED
    assert waiting.status_message.startswith("occurrence acknowledged by api:root at ")
    assert sent_to(fake_twilio) == [bob.phone]
    assert Delivery.objects.get(contact=ada).state == DeliveryState.PENDING, "never sent"


def test_a_step_falls_back_to_email_within_its_own_step(fake_twilio, fake_smtp):
    fake_twilio.fail_next(status=400, code=21211)
    ada = ContactFactory(name="Ada", email="ada@example.com")
    alert = AlertFactory(
        recipients=[ada],
        fallback_to_other_channel=True,
        escalation_policy=escalation_policy({"notify_alert_recipients": True}, repeat=1),
    )
    occurrence = occurrence_enqueue(alert=alert, scheduled_for=timezone.now())
    first, second = step_jobs()
    assert first.wait(timeout=30).state == State.FAILED
    fallback = Job.objects.get(unique_key__endswith=f":contact:{ada.pk}")
    assert fallback.unique_key == f"occurrence:{occurrence.pk}:email:round:1:step:1:contact:{ada.pk}"
    assert fallback.wait(timeout=30).state == State.SUCCEEDED, fallback.errors
    [email] = fake_smtp.messages
    assert email.rcpt_tos == ["ada@example.com"]

    assert run_now(second).state == State.SUCCEEDED, "round 2 tries the SMS again, as a step of its own"
    assert sorted(Delivery.objects.values_list("channel", "escalation_round", "state")) == [
        ("email", 1, DeliveryState.SENT),
        ("sms", 1, DeliveryState.FAILED),
        ("sms", 2, DeliveryState.SENT),
    ]
