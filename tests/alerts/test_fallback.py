"""Falling back to the contact's other channel, once: real worker and broker, fake Twilio and SMTP servers."""

from __future__ import annotations

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from alerts import channel_health, services
from alerts.models import AlertState, Delivery, DeliveryState
from scheduler.models import ACTIVE_STATES, Job, State
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture(autouse=True)
def fast_sms_rate(settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 1000
    settings.PUBLIC_BASE_URL = "https://alerts.example.com"


def settled() -> list[Job]:
    """Every job, once none is waiting or running any more."""
    wait_until(lambda: not Job.objects.filter(state__in=ACTIVE_STATES).exists(), what="every job to finish")
    return list(Job.objects.order_by("pk"))


def delivery_states() -> dict[str, str]:
    return dict(Delivery.objects.values_list("channel", "state"))


def test_an_invalid_number_falls_back_to_email_once(admin_client, fake_twilio, fake_smtp):
    fake_twilio.fail_next(status=400, code=21211)
    contact = ContactFactory(name="Ada", email="ada@example.com")
    alert = AlertFactory(recipients=[contact], name="Boiler", fallback_to_other_channel=True)
    services.alert_send_now(alert=alert)

    sms_job, email_job = settled()

    assert sms_job.state == State.FAILED
    assert email_job.state == State.SUCCEEDED, email_job.errors
    assert email_job.kwargs == {"contact_id": contact.pk} and "fallback to Ada" in email_job.label
    [received] = fake_smtp.messages
    assert received.rcpt_tos == ["ada@example.com"] and "Hi Ada, Boiler needs you." in received.message.get_content()
    assert delivery_states() == {"sms": DeliveryState.FAILED, "email": DeliveryState.SENT}
    assert Delivery.objects.get(channel="email").fallback_for == Delivery.objects.get(channel="sms")
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED
    page = admin_client.get(f"/jobs/{email_job.pk}/").content.decode()
    assert "(fallback for the SMS)" in page

    again = channel_health.delivery_fall_back(delivery=Delivery.objects.get(channel="sms"), reason="a replay")
    assert again is None and Job.objects.count() == 2 and len(fake_smtp.messages) == 1


def test_without_the_option_a_failed_sms_is_not_emailed(fake_twilio, fake_smtp):
    fake_twilio.fail_next(status=400, code=21211)
    services.alert_send_now(alert=AlertFactory())
    [sms_job] = settled()
    assert sms_job.state == State.FAILED
    assert fake_smtp.messages == [] and Delivery.objects.filter(channel="email").count() == 0


def test_an_opted_out_contact_is_emailed_instead_and_the_others_get_their_sms(fake_twilio, fake_smtp):
    olga = ContactFactory(name="Olga", sms_opted_out_at=timezone.now(), sms_opt_out_source="reply STOP")
    ivan = ContactFactory(name="Ivan")
    services.alert_send_now(alert=AlertFactory(recipients=[olga, ivan], fallback_to_other_channel=True))

    jobs = settled()

    assert [job.state for job in jobs] == [State.SUCCEEDED, State.SUCCEEDED]
    assert [m.to for m in fake_twilio.messages] == [ivan.phone]
    assert [m.rcpt_tos for m in fake_smtp.messages] == [[olga.email]]
    assert Delivery.objects.get(contact=olga, channel="sms").state == DeliveryState.SKIPPED
    skipped = Delivery.objects.get(contact=olga, channel="sms")
    assert Delivery.objects.get(contact=olga, channel="email").fallback_for == skipped


def test_a_refused_email_address_falls_back_to_sms(fake_twilio, fake_smtp):
    fake_smtp.refuse_next_recipient(550)
    contact = ContactFactory(phone="+14155550301")
    alert = AlertFactory(recipients=[contact], send_sms=False, send_email=True, fallback_to_other_channel=True)
    services.alert_send_now(alert=alert)

    email_job, sms_job = settled()

    assert (email_job.state, sms_job.state) == (State.FAILED, State.SUCCEEDED)
    assert [m.to for m in fake_twilio.messages] == ["+14155550301"]
    assert delivery_states() == {"email": DeliveryState.FAILED, "sms": DeliveryState.SENT}


def test_a_landline_reported_by_a_signed_status_callback_is_emailed_once(client, fake_twilio, fake_smtp):
    contact = ContactFactory(email="lin@example.com")
    alert = AlertFactory(recipients=[contact], fallback_to_other_channel=True)
    services.alert_send_now(alert=alert)
    [sms_job] = settled()
    assert sms_job.state == State.SUCCEEDED
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED
    [message] = fake_twilio.messages

    params = {"MessageSid": message.sid, "MessageStatus": "undelivered", "ErrorCode": "30006"}
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(
        "https://alerts.example.com/alerts/twilio/status", params
    )
    for _ in range(2):  # Twilio may call back twice (undelivered, then failed); a replay changes nothing
        response = client.post("/alerts/twilio/status", params, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 204

    _, email_job = settled()
    assert email_job.state == State.SUCCEEDED, email_job.errors
    assert [m.rcpt_tos for m in fake_smtp.messages] == [["lin@example.com"]]
    assert delivery_states() == {"sms": DeliveryState.UNDELIVERED, "email": DeliveryState.SENT}
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED
