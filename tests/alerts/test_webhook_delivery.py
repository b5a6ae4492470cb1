"""Alerts on the webhook channel, delivered by a real worker to a local receiver that checks each signature."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from alerts import services
from alerts.delivery import ACK_SALT
from alerts.models import AlertState, Contact, Delivery, DeliveryState, Occurrence
from alerts.planner import occurrence_enqueue
from scheduler import publishing
from scheduler.models import EventKind, Job, State
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.alerts.test_delivery import retry_now
from tests.alerts.test_quiet_hours_delivery import quiet_now
from tests.conftest import wait_until
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture
def ada():
    return ContactFactory(name="Ada")


@pytest.fixture
def receiver(ada):
    with WebhookReceiver(ada.webhook_secret) as receiver:
        ada.webhook_url = f"{receiver.url}/hooks/ada"
        ada.save()
        yield receiver


def webhook_alert(*recipients, **fields):
    return AlertFactory(**{"send_sms": False, "send_webhook": True, "recipients": list(recipients), **fields})


def test_an_alert_reaches_the_contacts_webhook_once_signed_with_the_documented_json(ada, receiver, settings):
    alert = webhook_alert(ada, name="Boiler")
    occurrence = services.alert_send_now(alert=alert)
    job = Job.objects.get().wait(timeout=30)

    assert job.state == State.SUCCEEDED, job.errors
    assert job.task_name == "alerts.deliver_webhook"
    assert job.status_message == "webhook: sent 1, skipped 0, failed 0, unknown 0"
    [request] = receiver.requests
    assert request.path == "/hooks/ada" and request.signature_valid, "signed with Ada's own secret"
    sent = request.json
    assert sent["alert"] == {"id": alert.pk, "name": "Boiler", "urgent": False}
    assert sent["occurrence"]["id"] == occurrence.pk
    assert sent["contact"] == {"id": ada.pk, "name": "Ada"}
    assert sent["message"] == "Hi Ada, Boiler needs you."
    assert sent["ack_url"].startswith(f"{settings.PUBLIC_BASE_URL}/alerts/ack/")
    token = sent["ack_url"].rstrip("/").rsplit("/", 1)[1]
    assert signing.loads(token, salt=ACK_SALT) == {"a": alert.pk, "c": ada.pk}, "a working acknowledgement link"
    assert sent["text"] == f"Hi Ada, Boiler needs you.\n\nAcknowledge: {sent['ack_url']}"
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.state, delivery.attempts) == ("webhook", DeliveryState.SENT, 1)
    assert delivery.address == ada.webhook_url and delivery.provider_id == sent["delivery_id"]
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED


def test_a_500_is_retried_and_the_retry_carries_the_same_delivery_id(ada, receiver):
    receiver.answer_next(500, body=b"database is down")
    services.alert_send_now(alert=webhook_alert(ada))
    wait_until(lambda: Job.objects.get().state == State.RETRYING, what="the first attempt to meet the 500")
    job = Job.objects.get()
    assert job.eta - job.modified_at == timedelta(hours=1), "the alert's retry delay"
    pending = Delivery.objects.get()
    assert pending.state == DeliveryState.PENDING and pending.error_code == "500"
    assert "HTTP 500" in pending.error and "database is down" in pending.error

    job = retry_now(job)
    assert job.state == State.SUCCEEDED, job.errors
    first, second = receiver.requests
    assert first.signature_valid and second.signature_valid
    assert first.json["delivery_id"] == second.json["delivery_id"] == Delivery.objects.get().provider_id
    assert Delivery.objects.get().attempts == 2


def test_a_404_fails_for_good_without_a_retry(ada, receiver):
    receiver.answer_next(404)
    services.alert_send_now(alert=webhook_alert(ada))
    job = Job.objects.get().wait(timeout=30)
    assert job.state == State.FAILED and job.attempts == 1
    assert not job.events.filter(kind=EventKind.RETRIED).exists()
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.error_code) == (DeliveryState.FAILED, "404")
    assert len(receiver.requests) == 1


def test_a_429_with_retry_after_comes_back_in_seconds_not_in_an_hour(ada, receiver):
    receiver.answer_next(429, headers={"Retry-After": "1"})
    services.alert_send_now(alert=webhook_alert(ada))
    wait_until(lambda: Job.objects.get().state == State.RETRYING, what="the attempt that met the 429")
    job = Job.objects.get()
    assert timedelta(seconds=0.5) < job.eta - job.modified_at <= timedelta(seconds=1), "Retry-After, not an hour"

    job = job.wait(timeout=30)  # nothing brings it forward
    assert job.state == State.SUCCEEDED, job.errors
    assert [r.answered for r in receiver.requests] == [429, 204]


def test_an_unanswered_post_is_sent_again_with_the_same_delivery_id(ada, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.answer_next(200, delay=1.5)
    services.alert_send_now(alert=webhook_alert(ada))
    wait_until(lambda: Job.objects.get().state == State.RETRYING, what="the timed-out attempt")
    delivery = Delivery.objects.get()
    assert delivery.error_code == "read-timeout" and delivery.unanswered_since is not None
    wait_until(lambda: len(receiver.requests) == 1, what="the receiver to finish its slow answer")

    job = retry_now(Job.objects.get())
    assert job.state == State.SUCCEEDED, job.errors
    first, second = receiver.requests
    assert first.json["delivery_id"] == second.json["delivery_id"], "what the receiver dedupes on"
    assert first.headers["X-Alerting-Timestamp"] <= second.headers["X-Alerting-Timestamp"]
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.unanswered_since) == (DeliveryState.SENT, None)


def test_recipients_without_a_webhook_url_get_nothing_and_a_job_with_none_aborts_saying_so(ada, receiver):
    without = ContactFactory(name="Bo", webhook_url="")
    services.alert_send_now(alert=webhook_alert(ada, without))
    job = Job.objects.get().wait(timeout=30)
    assert job.state == State.SUCCEEDED, job.errors
    assert [r.json["contact"]["name"] for r in receiver.requests] == ["Ada"]
    assert list(Delivery.objects.values_list("contact__name", flat=True)) == ["Ada"]

    Job.objects.all().delete()
    services.alert_send_now(alert=webhook_alert(without))
    job = Job.objects.get().wait(timeout=30)
    assert job.state == State.ABORTED
    assert job.status_message.startswith("no active recipient with an address for webhook")
    assert len(receiver.requests) == 1


def test_an_alert_on_every_channel_sends_one_job_per_channel(ada, receiver, fake_twilio, fake_smtp, settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 1000
    services.alert_send_now(alert=webhook_alert(ada, send_sms=True, send_email=True))
    wait_until(lambda: Job.objects.filter(state=State.SUCCEEDED).count() == 3, what="the three jobs")
    assert sorted(Job.objects.values_list("task_name", flat=True)) == [
        "alerts.deliver_email", "alerts.deliver_sms", "alerts.deliver_webhook",
    ]  # fmt: skip
    assert (len(fake_twilio.messages), len(fake_smtp.messages), len(receiver.requests)) == (1, 1, 1)


def test_in_quiet_hours_a_webhook_waits_like_the_other_channels_then_goes_to_the_url(ada, receiver):
    quiet, end = quiet_now()  # a contact named Ada in quiet hours for two more hours
    Contact.objects.filter(pk=quiet.pk).update(webhook_url=ada.webhook_url, webhook_secret=ada.webhook_secret)
    services.alert_send_now(alert=webhook_alert(quiet))
    first = Job.objects.order_by("pk").first().wait(timeout=30)
    assert first.state == State.SUCCEEDED and "1 waiting for quiet hours" in first.status_message
    held = Delivery.objects.get()
    assert (held.state, held.address) == (DeliveryState.PENDING, ada.webhook_url)
    assert receiver.requests == []

    waiting = Job.objects.exclude(pk=first.pk).get()
    assert waiting.eta == end
    Job.objects.filter(pk=waiting.pk).update(eta=timezone.now())  # the quiet hours' end, brought forward
    assert publishing.dispatch_due() == 1
    assert waiting.wait(timeout=30).state == State.SUCCEEDED, waiting.errors
    [request] = receiver.requests
    assert request.signature_valid and Delivery.objects.get().state == DeliveryState.SENT


def test_a_webhook_left_sending_by_a_dead_worker_becomes_unknown_and_is_not_resent(ada, receiver):
    """A receiver cannot be asked what it got: as for email, an operator decides (README, "Webhook channel")."""
    alert = webhook_alert(ada)
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())
    Delivery.objects.create(occurrence=occurrence, contact=ada, channel="webhook", address=ada.webhook_url,
                            state=DeliveryState.SENDING)  # fmt: skip
    occurrence_enqueue(alert=alert, scheduled_for=occurrence.scheduled_for)
    job = Job.objects.get().wait(timeout=30)
    assert job.state == State.ATTENTION and "may not have gone out" in job.status_message
    assert Delivery.objects.get().state == DeliveryState.UNKNOWN
    assert receiver.requests == []
