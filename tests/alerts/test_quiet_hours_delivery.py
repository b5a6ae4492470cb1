"""Quiet hours with a real worker and broker: the delivery waits in a job of its own, then goes once."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.db.models.signals import post_init
from django.utils import timezone

from alerts import services
from alerts.models import Alert, AlertState, Contact, Delivery, DeliveryState
from scheduler import publishing
from scheduler.models import Job, State
from tests.alerts.factories import AlertFactory, ContactFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture(autouse=True)
def fast_sms_rate(settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 1000


def quiet_now():
    """A contact (in UTC, for simple arithmetic) whose quiet hours began an hour ago and end in two."""
    now = timezone.now().replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    contact = ContactFactory(name="Ada", timezone="UTC", quiet_start=start.time(), quiet_end=end.time())
    return contact, end.astimezone(UTC)


def test_a_delivery_in_quiet_hours_waits_for_their_end_then_goes_once(fake_twilio):
    ada, end = quiet_now()
    alert = AlertFactory(recipients=[ada], name="Boiler")
    services.alert_send_now(alert=alert)
    first = Job.objects.order_by("pk").first().wait(timeout=30)

    assert first.state == State.SUCCEEDED, first.errors
    waiting = Job.objects.exclude(pk=first.pk).get()
    assert waiting.state == State.SCHEDULED and waiting.eta == end
    assert first.status_message.startswith("sms: sent 0, skipped 0, failed 0, unknown 0; 1 waiting for quiet hours")
    assert f"Ada until {end:%Y-%m-%d %H:%M} UTC (job {waiting.pk})" in first.status_message
    assert fake_twilio.messages == [] and Delivery.objects.get().state == DeliveryState.PENDING
    assert Alert.objects.get(pk=alert.pk).state == AlertState.ACTIVE, "not completed while a delivery waits"

    # The end of the quiet hours, brought forward rather than waited for.
    Job.objects.filter(pk=waiting.pk).update(eta=timezone.now())
    assert publishing.dispatch_due() == 1
    waiting.wait(timeout=30)
    assert waiting.state == State.SUCCEEDED, waiting.errors
    [message] = fake_twilio.messages
    assert message.to == ada.phone
    assert Delivery.objects.get().state == DeliveryState.SENT
    assert Alert.objects.get(pk=alert.pk).state == AlertState.COMPLETED


def test_an_urgent_alert_ignores_quiet_hours(fake_twilio):
    ada, _ = quiet_now()
    services.alert_send_now(alert=AlertFactory(recipients=[ada], urgent=True))
    job = Job.objects.order_by("pk").first().wait(timeout=30)
    assert job.state == State.SUCCEEDED and job.status_message == "sms: sent 1, skipped 0, failed 0, unknown 0"
    assert len(fake_twilio.messages) == 1 and Job.objects.count() == 1


def test_cancelling_the_alert_cancels_the_waiting_delivery(fake_twilio):
    ada, _ = quiet_now()
    alert = AlertFactory(recipients=[ada])
    services.alert_send_now(alert=alert)
    Job.objects.order_by("pk").first().wait(timeout=30)
    assert services.alert_cancel(alert=Alert.objects.get(pk=alert.pk)) == 1
    assert set(Job.objects.values_list("state", flat=True)) == {State.SUCCEEDED, State.CANCELLED}
    assert fake_twilio.messages == []


def waiting_job_run(first: Job) -> Job:
    """The job after quiet hours, its ETA brought forward rather than waited for."""
    waiting = Job.objects.exclude(pk=first.pk).get()
    Job.objects.filter(pk=waiting.pk).update(eta=timezone.now())
    assert publishing.dispatch_due() == 1
    return waiting.wait(timeout=30)


def test_the_job_after_quiet_hours_reads_its_contact_alone_not_every_recipient(fake_twilio):
    """At the hours' end each waiting contact has a job of its own: with 10,000 recipients, 10,000 jobs that
    must not each read the 10,000 to pick theirs."""
    ada, _ = quiet_now()
    alert = AlertFactory(recipients=[ada, ContactFactory(name="Bob"), ContactFactory(name="Cleo")])
    services.alert_send_now(alert=alert)
    first = Job.objects.order_by("pk").first().wait(timeout=30)
    assert len(fake_twilio.messages) == 2

    read: list[int] = []

    def contact_read(sender, instance, **kwargs) -> None:
        read.append(instance.pk)

    post_init.connect(contact_read, sender=Contact)
    try:
        waiting = waiting_job_run(first)
    finally:
        post_init.disconnect(contact_read, sender=Contact)

    assert waiting.state == State.SUCCEEDED, waiting.errors
    assert set(read) == {ada.pk}
    assert [m.to for m in fake_twilio.messages[2:]] == [ada.phone]


@pytest.mark.parametrize("change", ["removed from the recipients", "made inactive"])
def test_a_contact_removed_or_made_inactive_during_quiet_hours_gets_nothing_after_them(fake_twilio, change):
    ada, _ = quiet_now()
    alert = AlertFactory(recipients=[ada, ContactFactory(name="Bob")])
    services.alert_send_now(alert=alert)
    first = Job.objects.order_by("pk").first().wait(timeout=30)
    if change == "made inactive":
        Contact.objects.filter(pk=ada.pk).update(is_active=False)
    else:
        alert.recipients.remove(ada)

    waiting = waiting_job_run(first)

    assert waiting.state == State.ABORTED
    assert waiting.status_message.startswith("no active recipient with an address for sms")
    assert [m.to for m in fake_twilio.messages] == [alert.recipients.get(name="Bob").phone]
