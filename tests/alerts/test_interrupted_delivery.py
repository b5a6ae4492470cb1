"""A worker that dies between claiming a delivery and recording it loses nothing and sends nothing twice.

The worker is a real `celery worker` process that SIGKILLs its whole process group at a chosen point
(tests/alerts/crash_settings.py); the recovery sweep (``jobs_sweep``) then requeues its job, and another
worker settles the delivery it left ``sending`` by asking Twilio (the fake's list API, as the SDK's
``messages.list`` calls it).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from alerts import services
from alerts.channels import sms_channel
from alerts.models import Delivery, DeliveryState, Occurrence
from scheduler import publishing
from scheduler.models import Job, State
from scheduler.recovery import jobs_sweep
from tests.alerts.conftest import TWILIO_FROM_NUMBER
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
PHONES = ["+14155550111", "+14155550112"]


def twilio_env(fake) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_NUMBER": TWILIO_FROM_NUMBER,
        "TWILIO_API_BASE_URL": fake.url,
    }


@pytest.mark.parametrize("crash", ["before-send", "after-send"])
def test_a_worker_killed_between_claim_and_record_loses_and_duplicates_nothing(worker_process, fake_twilio, crash):
    env = twilio_env(fake_twilio)
    alert = AlertFactory(recipients=[ContactFactory(phone=phone) for phone in PHONES])
    dying = worker_process(DJANGO_SETTINGS_MODULE="tests.alerts.crash_settings", DELIVERY_CRASH=crash, **env)
    services.alert_send_now(alert=alert)
    dying.wait(timeout=60)
    job = Job.objects.get()
    claimed = Delivery.objects.get()
    assert (job.state, claimed.state) == (State.RUNNING, DeliveryState.SENDING)
    assert len(fake_twilio.messages) == (1 if crash == "after-send" else 0)

    with time_machine.travel(job.lease_expires_at + timedelta(seconds=1)):
        assert jobs_sweep().requeued == 1
    worker_process(**env)
    job.wait(timeout=60)

    assert job.state == State.SUCCEEDED, job.errors
    assert sorted(m.to for m in fake_twilio.messages) == PHONES, "each phone exactly once"
    sids = {m.to: m.sid for m in fake_twilio.messages}
    deliveries = list(Delivery.objects.order_by("pk"))
    assert [(d.state, d.provider_id) for d in deliveries] == [(DeliveryState.SENT, sids[d.address]) for d in deliveries]
    assert ("not sent again" in deliveries[0].note) is (crash == "after-send")


def claimed_an_hour_ago(alert) -> Occurrence:
    """An occurrence whose delivery a worker claimed an hour ago and died before sending."""
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())
    contact = alert.recipients.get()
    Delivery.objects.create(
        occurrence=occurrence, contact=contact, channel="sms", state=DeliveryState.SENDING, address=contact.phone
    )
    Delivery.objects.update(modified_at=timezone.now() - timedelta(hours=1))  # not auto_now: that is the claim
    return occurrence


def test_a_send_that_settled_a_dead_workers_claim_is_found_if_its_worker_dies_too(worker_process, fake_twilio):
    """The second worker finds nothing from the first claim, sends, and dies before recording: the next one
    looks for that send's message, in that send's time, not in the first claim's."""
    env = twilio_env(fake_twilio)
    alert = AlertFactory()
    occurrence = claimed_an_hour_ago(alert)
    dying = worker_process(DJANGO_SETTINGS_MODULE="tests.alerts.crash_settings", DELIVERY_CRASH="after-send", **env)
    services.occurrence_enqueue(alert=alert, scheduled_for=occurrence.scheduled_for)
    dying.wait(timeout=60)
    [message] = fake_twilio.messages
    job = Job.objects.get()

    with time_machine.travel(job.lease_expires_at + timedelta(seconds=1)):
        assert jobs_sweep().requeued == 1
    worker_process(**env)
    job.wait(timeout=60)

    assert job.state == State.SUCCEEDED, job.errors
    assert fake_twilio.messages == [message], "sent once"
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.provider_id) == (DeliveryState.SENT, message.sid)


# The tests with the module's worker thread come last: once started, it would take the jobs meant for a
# dying worker process.
@pytest.mark.usefixtures("worker")
def test_an_interrupted_send_is_not_retried_blind_while_twilio_cannot_be_asked(fake_twilio, settings):
    alert = AlertFactory()
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())
    Delivery.objects.create(
        occurrence=occurrence, contact=alert.recipients.get(), channel="sms", state=DeliveryState.SENDING,
        address=alert.recipients.get().phone,
    )  # fmt: skip
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # the discard port: nothing answers
    services.occurrence_enqueue(alert=alert, scheduled_for=occurrence.scheduled_for)
    job = wait_until(lambda: Job.objects.filter(state=State.RETRYING).first(), what="the attempt that cannot ask")
    assert Delivery.objects.get().state == DeliveryState.SENDING
    assert "not settled" in job.status_message
    assert fake_twilio.messages == []

    settings.TWILIO_API_BASE_URL = fake_twilio.url
    Job.objects.filter(pk=job.pk).update(eta=job.modified_at)  # the hourly retry brought forward
    assert publishing.dispatch_due() == 1
    job.wait(timeout=30)
    assert job.state == State.SUCCEEDED, job.errors
    [message] = fake_twilio.messages
    assert Delivery.objects.get().provider_id == message.sid


@pytest.mark.usefixtures("worker")
def test_a_send_cut_short_an_hour_ago_does_not_take_the_next_occurrences_message_for_its_own(fake_twilio):
    ada = ContactFactory(name="Ada")
    alert = AlertFactory(recipients=[ada], name="Boiler")
    occurrence = claimed_an_hour_ago(alert)
    # The next occurrence sent the same text since, and its delivery is not recorded yet.
    next_ones = sms_channel().send(to=ada.phone, body="Hi Ada, Boiler needs you.\n\nAcknowledge: https://a.example/1")

    services.occurrence_enqueue(alert=alert, scheduled_for=occurrence.scheduled_for)
    job = Job.objects.get().wait(timeout=30)

    assert job.state == State.SUCCEEDED, job.errors
    _, resent = fake_twilio.messages
    assert resent.to == ada.phone and resent.sid != next_ones.provider_id
    assert Delivery.objects.get().provider_id == resent.sid
