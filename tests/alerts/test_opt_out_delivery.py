"""An opted-out phone gets no SMS: real worker, real broker, the fake Twilio and signed inbound replies."""

from __future__ import annotations

import uuid

import pytest
from twilio.request_validator import RequestValidator

from alerts import services
from alerts.models import Contact, Delivery, DeliveryState
from scheduler.models import EventKind, Job, State
from tests.alerts.factories import AlertFactory, ContactFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture(autouse=True)
def fast_sms_rate(settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 1000


@pytest.fixture
def twilio(fake_twilio, settings):
    """The fake Twilio, with the inbound webhook signed by its token."""
    settings.PUBLIC_BASE_URL = "https://alerts.example.com"
    return fake_twilio


def reply(client, token: str, phone: str, body: str) -> None:
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "From": phone, "Body": body}
    signature = RequestValidator(token).compute_signature("https://alerts.example.com/alerts/twilio/inbound", params)
    response = client.post("/alerts/twilio/inbound", params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def send_now(alert) -> Job:
    before = set(Job.objects.values_list("pk", flat=True))
    alert.refresh_from_db()  # a one-off that went out is completed; sending it again reactivates it
    services.alert_send_now(alert=alert)
    [job] = Job.objects.exclude(pk__in=before)
    return job.wait(timeout=30)


def test_after_stop_the_phone_gets_nothing_and_after_start_it_gets_sms_again(client, twilio):
    olga = ContactFactory(name="Olga", phone="+14155550201")
    ivan = ContactFactory(name="Ivan", phone="+14155550202")
    alert = AlertFactory(recipients=[olga, ivan], name="Freezer")
    reply(client, twilio.auth_token, "+14155550201", "Stop")

    job = send_now(alert)

    assert job.state == State.SUCCEEDED, job.errors
    assert [m.to for m in twilio.messages] == ["+14155550202"]
    skipped = Delivery.objects.get(contact=olga)
    assert skipped.state == DeliveryState.SKIPPED and skipped.attempts == 0
    assert skipped.note.startswith("opted out of SMS on ") and "reply STOP" in skipped.note
    assert job.status_message == "sms: sent 1, skipped 1, failed 0, unknown 0"

    reply(client, twilio.auth_token, "+14155550201", "START")
    send_now(alert)
    assert [m.to for m in twilio.messages] == ["+14155550202", "+14155550202", "+14155550201"]


def test_twilio_21610_fails_the_delivery_for_good_and_opts_the_phone_out(twilio):
    contact = ContactFactory(phone="+14155550203")
    twilio.refuse_number("+14155550203", code=21610)
    alert = AlertFactory(recipients=[contact])

    job = send_now(alert)

    assert job.state == State.FAILED and job.attempts == 1
    assert not job.events.filter(kind=EventKind.RETRIED).exists(), "21610 is permanent"
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.FAILED and "21610" in delivery.error
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is not None and contact.sms_opt_out_source == "Twilio error 21610"
    refused = twilio.failed_count

    second = send_now(alert)
    assert second.state == State.SUCCEEDED
    assert twilio.failed_count == refused, "an opted-out phone is not even tried"
    assert Delivery.objects.filter(state=DeliveryState.SKIPPED, contact=contact).count() == 1
    assert Contact.objects.get(pk=contact.pk).sms_opt_out_source == "Twilio error 21610"
