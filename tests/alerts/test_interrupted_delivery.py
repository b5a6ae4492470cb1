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
