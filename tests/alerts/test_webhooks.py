"""Twilio's webhooks (signed with the auth token) and the acknowledgement link."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import signing
from django.utils import timezone
from twilio.request_validator import RequestValidator

from alerts.delivery import ACK_SALT, acknowledgement_url
from alerts.models import Alert, AlertState, Delivery, DeliveryState, InboundMessage, Occurrence
from tests.alerts.factories import AlertFactory, ContactFactory

pytestmark = pytest.mark.django_db
TOKEN = "webhook-test-token"


@pytest.fixture(autouse=True)
def twilio_token(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = "https://alerts.example.com"


def post_signed(client, path: str, params: dict[str, str], *, token: str = TOKEN):
    signature = RequestValidator(token).compute_signature(f"https://alerts.example.com{path}", params)
    return client.post(path, params, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def sent_delivery():
    alert = AlertFactory()
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())
    return Delivery.objects.create(
        occurrence=occurrence, contact=alert.recipients.get(), channel="sms", state=DeliveryState.SENT,
        provider_id="SM" + "a" * 32,
    )  # fmt: skip


def test_a_signed_status_callback_updates_the_delivery(client, sent_delivery):
    response = post_signed(
        client, "/alerts/twilio/status", {"MessageSid": sent_delivery.provider_id, "MessageStatus": "delivered"}
    )
    assert response.status_code == 204
    sent_delivery.refresh_from_db()
    assert sent_delivery.state == DeliveryState.DELIVERED


def test_a_late_sent_status_does_not_undo_delivered(client, sent_delivery):
    Delivery.objects.filter(pk=sent_delivery.pk).update(state=DeliveryState.DELIVERED)
    post_signed(client, "/alerts/twilio/status", {"MessageSid": sent_delivery.provider_id, "MessageStatus": "sent"})
    sent_delivery.refresh_from_db()
    assert sent_delivery.state == DeliveryState.DELIVERED


def test_a_failed_status_keeps_twilios_error_code(client, sent_delivery):
    params = {"MessageSid": sent_delivery.provider_id, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    post_signed(client, "/alerts/twilio/status", params)
    sent_delivery.refresh_from_db()
    assert (sent_delivery.state, sent_delivery.error) == (DeliveryState.UNDELIVERED, "Twilio error 30003")


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Twilio-Signature": "forged"}, {"X-Twilio-Signature": RequestValidator("wrong-token").compute_signature(
        "https://alerts.example.com/alerts/twilio/status", {"MessageSid": "x", "MessageStatus": "failed"})}],
    ids=["unsigned", "garbage", "signed-with-another-token"],
)  # fmt: skip
def test_a_forged_or_unsigned_status_callback_gets_403_and_changes_nothing(client, sent_delivery, headers):
    params = {"MessageSid": sent_delivery.provider_id, "MessageStatus": "failed"}
    response = client.post("/alerts/twilio/status", params, headers=headers)
    assert response.status_code == 403
    sent_delivery.refresh_from_db()
    assert sent_delivery.state == DeliveryState.SENT


def test_a_signature_over_other_parameters_is_refused(client, sent_delivery):
    signed_for = {"MessageSid": sent_delivery.provider_id, "MessageStatus": "delivered"}
    signature = RequestValidator(TOKEN).compute_signature("https://alerts.example.com/alerts/twilio/status", signed_for)
    tampered = {**signed_for, "MessageStatus": "failed"}
    response = client.post("/alerts/twilio/status", tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_webhooks_are_refused_when_no_auth_token_is_configured(client, settings, sent_delivery):
    params = {"MessageSid": sent_delivery.provider_id, "MessageStatus": "failed"}
    settings.TWILIO_AUTH_TOKEN = ""
    assert post_signed(client, "/alerts/twilio/status", params).status_code == 403


def inbound(phone: str, body: str, *, sid: str = "") -> dict[str, str]:
    return {"MessageSid": sid or "SM" + uuid.uuid4().hex, "From": phone, "Body": body}


def sms_delivery(contact, *, created_at, state=DeliveryState.SENT) -> Delivery:
    alert = AlertFactory(recipients=[contact])
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=created_at)
    return Delivery.objects.create(
        occurrence=occurrence, contact=contact, channel="sms", state=state, created_at=created_at,
        provider_id="SM" + uuid.uuid4().hex,
    )  # fmt: skip


def state_of(delivery: Delivery) -> str:
    return Alert.objects.get(pk=delivery.occurrence.alert_id).state


def test_an_ack_reply_acknowledges_the_last_alert_sent_to_that_phone(client, sent_delivery):
    phone = sent_delivery.contact.phone
    response = post_signed(client, "/alerts/twilio/inbound", inbound(phone, " ack "))
    assert response.status_code == 200 and b"Acknowledged:" in response.content
    assert sent_delivery.occurrence.alert.__class__.objects.get().state == AlertState.ACKNOWLEDGED


def test_other_replies_and_unknown_numbers_change_nothing(client, sent_delivery):
    assert b"Reply ACK" in post_signed(client, "/alerts/twilio/inbound", inbound("+14155550999", "hi")).content
    response = post_signed(client, "/alerts/twilio/inbound", inbound("+14155550999", "ACK"))
    assert b"no alert for this number" in response.content
    sent_delivery.occurrence.alert.refresh_from_db()
    assert sent_delivery.occurrence.alert.state == AlertState.ACTIVE


def test_a_forged_inbound_sms_gets_403(client, sent_delivery):
    response = client.post("/alerts/twilio/inbound", inbound(sent_delivery.contact.phone, "ACK"))
    assert response.status_code == 403
    sent_delivery.occurrence.alert.refresh_from_db()
    assert sent_delivery.occurrence.alert.state == AlertState.ACTIVE


def test_a_replayed_ack_changes_nothing_even_after_a_new_alert_went_to_that_phone(client):
    contact = ContactFactory()
    first = sms_delivery(contact, created_at=timezone.now() - timedelta(hours=2))
    reply = inbound(contact.phone, "ACK")
    assert b"Acknowledged:" in post_signed(client, "/alerts/twilio/inbound", reply).content
    second = sms_delivery(contact, created_at=timezone.now())

    replayed = post_signed(client, "/alerts/twilio/inbound", reply)

    assert replayed.status_code == 200 and b"<Message>" not in replayed.content, "a replay must not reply by SMS"
    assert (state_of(first), state_of(second)) == (AlertState.ACKNOWLEDGED, AlertState.ACTIVE)
    assert InboundMessage.objects.get(sid=reply["MessageSid"]).acknowledged_id == first.occurrence.alert_id


def test_an_ack_acknowledges_only_an_alert_sent_before_the_reply_was_received(client):
    contact = ContactFactory()
    with time_machine.travel(datetime(2026, 11, 21, 12, 0, tzinfo=UTC), tick=False):
        earlier = sms_delivery(contact, created_at=timezone.now() - timedelta(minutes=5))
        later = sms_delivery(contact, created_at=timezone.now() + timedelta(seconds=1))
        response = post_signed(client, "/alerts/twilio/inbound", inbound(contact.phone, "ACK"))
    assert f"Acknowledged: {earlier.occurrence.alert.name}".encode() in response.content
    assert (state_of(earlier), state_of(later)) == (AlertState.ACKNOWLEDGED, AlertState.ACTIVE)


def test_an_ack_skips_a_message_that_never_left(client):
    contact = ContactFactory()
    sent = sms_delivery(contact, created_at=timezone.now() - timedelta(hours=1))
    failed = sms_delivery(contact, created_at=timezone.now() - timedelta(minutes=1), state=DeliveryState.FAILED)
    post_signed(client, "/alerts/twilio/inbound", inbound(contact.phone, "ACK"))
    assert (state_of(sent), state_of(failed)) == (AlertState.ACKNOWLEDGED, AlertState.ACTIVE)


def test_an_inbound_sms_without_a_message_sid_is_refused(client, sent_delivery):
    params = {"From": sent_delivery.contact.phone, "Body": "ACK"}
    assert post_signed(client, "/alerts/twilio/inbound", params).status_code == 400
    assert state_of(sent_delivery) == AlertState.ACTIVE


def test_the_acknowledgement_link_asks_first_and_acknowledges_on_confirmation(client):
    alert = AlertFactory(name="Freezer warm")
    path = acknowledgement_url(alert_id=alert.pk, contact_id=ContactFactory().pk).removeprefix(
        "https://alerts.example.com"
    )
    page = client.get(path)
    assert b"Freezer warm" in page.content and b"<button" in page.content
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE, "opening the link (or a link preview robot) must not acknowledge"
    assert b"Thank you: acknowledged." in client.post(path).content
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED


def test_a_tampered_acknowledgement_link_is_refused(client):
    alert = AlertFactory()
    token = signing.dumps({"a": alert.pk, "c": 1}, salt=ACK_SALT, compress=True)
    response = client.post(f"/alerts/ack/{token[:-2]}xx/")
    assert response.status_code == 404
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE


def test_received_sms_are_listed_in_the_admin_with_what_they_acknowledged(client, admin_user, sent_delivery):
    post_signed(client, "/alerts/twilio/inbound", inbound(sent_delivery.contact.phone, "ACK"))
    client.force_login(admin_user)
    page = client.get("/admin/alerts/inboundmessage/").content.decode()
    assert sent_delivery.contact.phone in page and sent_delivery.occurrence.alert.name in page
