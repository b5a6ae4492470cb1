"""Fan-out: an occurrence's recipients shared among delivery jobs (alerts/fanout.py), run by a real worker."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import delivery_rows, services
from alerts.fanout import Share, occurrence_shares
from alerts.models import AlertState, Delivery, DeliveryState, Occurrence
from alerts.planner import occurrence_enqueue
from scheduler.models import Job, State
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.conftest import wait_until


@pytest.fixture(autouse=True)
def three_per_job(settings):
    settings.ALERT_RECIPIENTS_PER_JOB = 3
    settings.SMS_PER_SECOND_PER_NUMBER = 0


def sms_jobs():
    return Job.objects.filter(task_name="alerts.deliver_sms").order_by("pk")


@pytest.mark.django_db
def test_up_to_the_limit_an_occurrence_has_one_job_per_channel_as_before():
    alert = AlertFactory(recipients=ContactFactory.create_batch(3), send_email=True)
    occurrence = services.alert_send_now(alert=alert)
    keys = sorted(Job.objects.values_list("unique_key", flat=True))
    assert keys == [f"occurrence:{occurrence.pk}:email", f"occurrence:{occurrence.pk}:sms"]
    assert [job.kwargs for job in sms_jobs()] == [{}]


@pytest.mark.django_db
def test_above_the_limit_each_channel_gets_one_job_per_share():
    alert = AlertFactory(recipients=ContactFactory.create_batch(7), name="Drill", send_email=True)
    occurrence = services.alert_send_now(alert=alert)
    jobs = list(sms_jobs())
    assert [job.unique_key for job in jobs] == [f"occurrence:{occurrence.pk}:sms:share:{i}:of:3" for i in (1, 2, 3)]
    assert [job.kwargs for job in jobs] == [{"share": i, "shares": 3} for i in range(3)]
    assert jobs[0].label == "Drill · sms · share 1 of 3 of 7 recipients"
    assert Job.objects.filter(task_name="alerts.deliver_email").count() == 3


@pytest.mark.django_db
def test_every_contact_falls_in_exactly_one_share():
    contacts = ContactFactory.create_batch(20)
    occurrence = Occurrence.objects.create(alert=AlertFactory(recipients=contacts), scheduled_for=timezone.now())
    shares = occurrence_shares(len(contacts))
    assert len(shares) == 7
    members = Counter(
        c.pk for share in shares for c in delivery_rows.occurrence_with_recipients(occurrence.pk, share)[1]
    )
    assert members == Counter(c.pk for c in contacts)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_a_fan_out_sends_one_message_to_each_recipient_and_then_completes_the_alert(fake_twilio):
    contacts = ContactFactory.create_batch(7)
    alert = AlertFactory(recipients=contacts)
    services.alert_send_now(alert=alert)
    for job in sms_jobs():
        assert job.wait(timeout=30).state == State.SUCCEEDED, job.errors
    assert sorted(m.to for m in fake_twilio.messages) == sorted(c.phone for c in contacts)
    by_job = Counter(Delivery.objects.filter(state=DeliveryState.SENT).values_list("job_id", flat=True))
    assert sorted(by_job.values()) == [2, 2, 3]
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_a_recipient_added_after_planning_is_sent_to_by_its_share(fake_twilio):
    alert = AlertFactory(recipients=ContactFactory.create_batch(4), send_at=timezone.now() + timedelta(seconds=1.5))
    services.alert_schedule_sync(alert=alert)
    assert sms_jobs().count() == 2
    late = ContactFactory(phone="+14155559999")
    alert.recipients.add(late)
    for job in sms_jobs():
        job.wait(timeout=30)
    assert sorted(m.to for m in fake_twilio.messages).count(late.phone) == 1
    assert len(fake_twilio.messages) == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_an_empty_share_succeeds_and_the_alert_still_completes(fake_twilio, settings):
    settings.ALERT_RECIPIENTS_PER_JOB = 1
    first, _, third = ContactFactory.create_batch(3)  # ids of one parity: share 2 of 2 or 1 of 2 is empty
    alert = AlertFactory(recipients=[first, third])
    services.alert_send_now(alert=alert)
    jobs = [job.wait(timeout=30) for job in sms_jobs()]
    assert [job.state for job in jobs] == [State.SUCCEEDED, State.SUCCEEDED]
    assert any("has no active recipient" in job.status_message for job in jobs)
    assert len(fake_twilio.messages) == 2
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_shares_planned_twice_differently_still_send_each_recipient_one_message(fake_twilio, settings):
    # The first plan's single job is sending when the second plan's two shares come for the same recipients.
    fake_twilio.latency = 1.0
    settings.ALERT_RECIPIENTS_PER_JOB = 10
    contacts = ContactFactory.create_batch(2)
    alert = AlertFactory(recipients=contacts)
    due = timezone.now()
    occurrence_enqueue(alert=alert, scheduled_for=due)
    wait_until(lambda: Delivery.objects.filter(state=DeliveryState.SENDING).exists(), what="the first send")
    settings.ALERT_RECIPIENTS_PER_JOB = 1
    occurrence_enqueue(alert=alert, scheduled_for=due)
    assert sms_jobs().count() == 3
    for job in sms_jobs():
        job.wait(timeout=30)
    assert sorted(m.to for m in fake_twilio.messages) == sorted(c.phone for c in contacts)


@pytest.mark.django_db
def test_cancelling_the_alert_cancels_every_share():
    alert = AlertFactory(recipients=ContactFactory.create_batch(7))
    services.alert_schedule_sync(alert=alert)
    assert services.alert_cancel(alert=alert) == 3
    assert set(Job.objects.values_list("state", flat=True)) == {State.CANCELLED}


@pytest.mark.django_db
def test_cancelling_an_alert_takes_as_many_statements_for_thirty_shares_as_for_three(settings):
    def cancel(recipients: int) -> int:
        alert = AlertFactory(recipients=ContactFactory.create_batch(recipients))
        services.alert_schedule_sync(alert=alert)
        with CaptureQueriesContext(connection) as statements:
            assert services.alert_cancel(alert=alert) == recipients // 3
        return len(statements)

    assert cancel(90) == cancel(9)


@pytest.mark.django_db
def test_moving_the_occurrence_cancels_its_shares_and_plans_the_new_time():
    alert = AlertFactory(recipients=ContactFactory.create_batch(7))
    services.alert_schedule_sync(alert=alert)
    alert.send_at += timedelta(hours=1)
    alert.save()
    services.alert_schedule_sync(alert=alert)
    states = Counter((job.eta == alert.send_at, job.state) for job in sms_jobs())
    assert states == {(False, State.CANCELLED): 3, (True, State.SCHEDULED): 3}


def test_a_share_is_a_job_argument_and_part_of_the_key():
    assert Share(1, 4).job_kwargs == {"share": 1, "shares": 4}
    assert Share(1, 4).key_suffix == ":share:2:of:4"
    assert not Share() and Share().job_kwargs == {} and Share().key_suffix == ""
