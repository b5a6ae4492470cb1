"""Escalation policies: the plan of a walk, its jobs, acknowledging one occurrence, and where a walk stands.

Delivery by a real worker is in test_escalation_delivery.py; the admin's forms in test_escalation_admin.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from alerts import services
from alerts.escalation import Stage, occurrence_walk_status, walk_plan
from alerts.models import AlertState, Delivery, DeliveryState, EscalationStep, Occurrence, ScheduleKind
from alerts.planner import occurrence_enqueue
from scheduler.models import Job, State
from scheduler.services import job_cancel
from tests.alerts.factories import AlertFactory, ContactFactory, escalation_policy

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def three_steps(*contacts, repeat: int = 0):
    return escalation_policy(
        {"notify_alert_recipients": True, "wait_minutes": 5},
        {"contacts": contacts, "send_email": True, "wait_minutes": 5},
        {"notify_alert_recipients": True, "contacts": contacts, "wait_minutes": 5},
        repeat=repeat,
    )


def step_jobs() -> list[Job]:
    return list(Job.objects.filter(unique_key__contains=":round:").order_by("eta", "unique_key"))


def test_the_plan_is_each_step_of_each_round_after_the_waits_before_it():
    steps = [EscalationStep(position=2, wait_minutes=10), EscalationStep(position=1, wait_minutes=5, send_email=True)]

    plan = walk_plan(steps=steps, repeat=1, start=T0)

    assert [(p.stage, p.eta - T0, p.channels) for p in plan] == [
        (Stage(1, 1), timedelta(0), ("sms", "email")),
        (Stage(1, 2), timedelta(minutes=5), ("sms",)),
        (Stage(2, 1), timedelta(minutes=15), ("sms", "email")),
        (Stage(2, 2), timedelta(minutes=20), ("sms",)),
    ]


def test_a_plan_without_repeat_walks_once_and_a_negative_repeat_is_refused():
    steps = [EscalationStep(position=1, wait_minutes=0)]
    assert [p.stage for p in walk_plan(steps=steps, repeat=0, start=T0)] == [Stage(1, 1)]
    with pytest.raises(ValueError, match="repeat must be 0 or more, not -1"):
        walk_plan(steps=steps, repeat=-1, start=T0)


def test_an_occurrence_gets_one_job_per_step_round_and_channel_once():
    manager = ContactFactory(name="Mia")
    alert = AlertFactory(name="Boiler", escalation_policy=three_steps(manager, repeat=1))

    occurrence = occurrence_enqueue(alert=alert, scheduled_for=T0)
    occurrence_enqueue(alert=alert, scheduled_for=T0)  # a second planner finds the same jobs

    jobs = step_jobs()
    assert len(jobs) == 8, "2 rounds of: step 1 by SMS, step 2 by SMS and email, step 3 by SMS"
    first = jobs[0]
    assert first.unique_key == f"occurrence:{occurrence.pk}:sms:round:1:step:1"
    assert first.kwargs == {"escalation_round": 1, "escalation_step": 1} and first.args == [occurrence.pk]
    assert first.label == "Boiler · sms · step 1 of 3, round 1 of 2"
    assert [job.eta - T0 for job in jobs] == [timedelta(minutes=m) for m in (0, 5, 5, 10, 15, 20, 20, 25)]
    assert {job.task_name for job in jobs} == {"alerts.deliver_sms", "alerts.deliver_email"}
    assert Job.objects.count() == 8, "no job of the alert's own channels besides the walk's"


def test_a_step_may_notify_by_webhook_and_gets_a_webhook_job():
    hook = ContactFactory(name="Chat room", webhook_url="https://chat.example.com/hooks/abc")
    policy = escalation_policy({"contacts": [hook], "send_sms": False, "send_webhook": True, "wait_minutes": 5})
    assert policy.steps.get().channels == ["webhook"]
    occurrence_enqueue(alert=AlertFactory(escalation_policy=policy), scheduled_for=T0)
    assert [job.task_name for job in step_jobs()] == ["alerts.deliver_webhook"]


def test_a_step_without_any_channel_is_refused():
    step = EscalationStep(policy=escalation_policy({"send_sms": True}), position=2, send_sms=False)
    with pytest.raises(ValidationError, match="SMS, email or webhook"):
        step.clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        step.save()


def test_an_alert_without_a_policy_still_gets_one_job_per_channel():
    alert = AlertFactory(send_email=True)
    occurrence = occurrence_enqueue(alert=alert, scheduled_for=T0)
    assert sorted(Job.objects.values_list("unique_key", flat=True)) == [
        f"occurrence:{occurrence.pk}:email",
        f"occurrence:{occurrence.pk}:sms",
    ]


def test_cancelling_the_alert_cancels_every_step_still_to_come():
    alert = AlertFactory(escalation_policy=three_steps(ContactFactory()))
    occurrence_enqueue(alert=alert, scheduled_for=T0)

    assert services.alert_cancel(alert=alert) == 4
    assert set(Job.objects.values_list("state", flat=True)) == {State.CANCELLED}


def test_moving_a_scheduled_occurrence_cancels_its_steps():
    alert = AlertFactory(
        schedule_kind=ScheduleKind.CRONTAB, crontab="0 9 * * *", send_at=None, escalation_policy=three_steps()
    )
    with time_machine.travel(T0 - timedelta(minutes=1), tick=False):
        services.alert_schedule_sync(alert=alert)
        assert len(step_jobs()) == 4
        alert.crontab = "30 9 * * *"
        alert.save()
        services.alert_schedule_sync(alert=alert)
    assert {job.state for job in step_jobs()} == {State.CANCELLED}


def test_acknowledging_a_recurring_alert_stops_the_occurrence_not_the_alert():
    alert = AlertFactory(
        schedule_kind=ScheduleKind.CRONTAB, crontab="0 9 * * *", send_at=None, escalation_policy=three_steps()
    )
    earlier = Occurrence.objects.create(alert=alert, scheduled_for=T0 - timedelta(days=1))
    latest = Occurrence.objects.create(alert=alert, scheduled_for=T0)

    with time_machine.travel(T0 + timedelta(minutes=7), tick=False):
        assert services.alert_acknowledge(alert=alert, by="api:ops") is True
    with time_machine.travel(T0 + timedelta(minutes=8), tick=False):
        assert services.alert_acknowledge(alert=alert, by="api:someone-else") is False, "acknowledged already"

    latest.refresh_from_db()
    earlier.refresh_from_db()
    assert latest.acknowledged_by == "api:ops" and latest.acknowledged_at == T0 + timedelta(minutes=7)
    assert earlier.acknowledged_at is None, "yesterday's walk is over; acknowledging means the latest one"
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE, "its next occurrences will walk the policy again"


def test_acknowledging_a_one_off_with_a_policy_acknowledges_the_alert_too():
    alert = AlertFactory(send_at=T0, escalation_policy=three_steps())
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=T0)
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        assert services.alert_acknowledge(alert=alert, by="contact 1 via link", occurrence=occurrence)
    occurrence.refresh_from_db()
    alert.refresh_from_db()
    assert (
        occurrence.acknowledgement_reason()
        == "occurrence acknowledged by contact 1 via link at 2026-03-02 09:01:00 UTC"
    )
    assert alert.state == AlertState.ACKNOWLEDGED


def test_a_cancelled_alert_with_a_policy_cannot_be_acknowledged():
    alert = AlertFactory(send_at=T0, escalation_policy=three_steps(), state=AlertState.CANCELLED)
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=T0)
    assert services.alert_acknowledge(alert=alert, by="api:ops", occurrence=occurrence) is False
    occurrence.refresh_from_db()
    assert occurrence.acknowledged_at is None


def test_the_status_says_which_step_was_sent_and_when_the_next_comes():
    ada = ContactFactory(name="Ada")
    alert = AlertFactory(recipients=[ada], escalation_policy=three_steps(ada))
    occurrence = occurrence_enqueue(alert=alert, scheduled_for=T0)
    assert str(occurrence_walk_status(occurrence)) == "no step sent yet, next at 09:00 UTC"

    # Step 1 ran: its job is over and its SMS went out.
    job_cancel(job_id=step_jobs()[0].pk, reason="stands for a finished job here")
    Delivery.objects.create(
        occurrence=occurrence, contact=ada, channel="sms", state=DeliveryState.SENT, **Stage(1, 1).delivery_fields
    )
    assert str(occurrence_walk_status(occurrence)) == "step 1 of 3, next at 09:05 UTC"

    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):
        services.alert_acknowledge(alert=alert, by="contact 7 via link")
    occurrence.refresh_from_db()
    assert str(occurrence_walk_status(occurrence)) == (
        "step 1 of 3, acknowledged by contact 7 via link at 2026-03-02 09:06:00 UTC"
    )


def test_an_occurrence_of_an_alert_without_a_policy_has_no_status():
    occurrence = occurrence_enqueue(alert=AlertFactory(), scheduled_for=T0)
    assert occurrence_walk_status(occurrence) is None


def test_a_contact_gets_a_delivery_row_per_step_and_round_but_one_per_step():
    ada = ContactFactory()
    occurrence = Occurrence.objects.create(alert=AlertFactory(), scheduled_for=T0)
    for stage in (Stage(1, 1), Stage(1, 2), Stage(2, 1)):
        Delivery.objects.create(occurrence=occurrence, contact=ada, channel="sms", **stage.delivery_fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(occurrence=occurrence, contact=ada, channel="sms", **Stage(1, 2).delivery_fields)
