"""SMS opt-out through Twilio's signed inbound webhook (STOP / START / HELP), and how the admin shows it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertState, Contact, Delivery, DeliveryState, Occurrence
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.alerts.test_webhooks import post_signed
from tests.config.test_settings import start

pytestmark = pytest.mark.django_db
TOKEN = "webhook-test-token"


@pytest.fixture(autouse=True)
def twilio_token(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = "https://alerts.example.com"


def reply(client, phone: str, body: str, *, sid: str = ""):
    params = {"MessageSid": sid or "SM" + uuid.uuid4().hex, "From": phone, "Body": body}
    return post_signed(client, "/alerts/twilio/inbound", params)


def opted_out(contact: Contact) -> bool:
    contact.refresh_from_db()
    return contact.sms_opted_out


@pytest.mark.parametrize("word", ["STOP", " stop ", "StopAll", "UNSUBSCRIBE", "cancel", "END", "quit\n"])
def test_each_twilio_opt_out_keyword_opts_the_phone_out_without_a_reply(client, word):
    contact = ContactFactory(phone="+14155550111")
    response = reply(client, "+14155550111", word, sid="SM" + "1" * 32)
    assert response.status_code == 200 and b"<Message>" not in response.content, "Twilio confirms a STOP itself"
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is not None
    assert contact.sms_opt_out_source == f"reply {word.strip().upper()} (SM{'1' * 32})"


@pytest.mark.parametrize("word", ["stop now", "STOPP", "please stop", ""])
def test_a_message_that_only_contains_a_keyword_opts_nothing_out(client, word):
    contact = ContactFactory()
    reply(client, contact.phone, word)
    assert not opted_out(contact)


@pytest.mark.parametrize("word", ["START", "unstop", " Yes "])
def test_each_opt_in_keyword_opts_the_phone_back_in(client, word):
    contact = ContactFactory(sms_opted_out_at=timezone.now(), sms_opt_out_source="reply STOP")
    response = reply(client, contact.phone, word)
    assert response.status_code == 200 and b"<Message>" not in response.content
    contact.refresh_from_db()
    assert (contact.sms_opted_out_at, contact.sms_opt_out_source) == (None, "")


def test_stop_opts_out_every_contact_with_that_number_and_no_other(client):
    same = [ContactFactory(phone="+14155550122"), ContactFactory(phone="+14155550122")]
    other = ContactFactory(phone="+14155550123")
    reply(client, "+14155550122", "STOP")
    assert [opted_out(c) for c in same] == [True, True]
    assert not opted_out(other)


def test_a_second_stop_keeps_the_first_time(client):
    contact = ContactFactory()
    first = timezone.now() - timedelta(days=3)
    Contact.objects.filter(pk=contact.pk).update(sms_opted_out_at=first, sms_opt_out_source="reply STOP (SMold)")
    reply(client, contact.phone, "STOP")
    contact.refresh_from_db()
    assert (contact.sms_opted_out_at, contact.sms_opt_out_source) == (first, "reply STOP (SMold)")


def test_a_replayed_stop_after_start_changes_nothing(client):
    contact = ContactFactory()
    sid = "SM" + "2" * 32
    reply(client, contact.phone, "STOP", sid=sid)
    reply(client, contact.phone, "START")
    replayed = reply(client, contact.phone, "STOP", sid=sid)
    assert replayed.status_code == 200
    assert not opted_out(contact), "a captured STOP replayed later must not opt the phone out again"


def test_a_forged_stop_gets_403_and_opts_nothing_out(client):
    contact = ContactFactory()
    response = client.post("/alerts/twilio/inbound", {"MessageSid": "SMx", "From": contact.phone, "Body": "STOP"})
    assert response.status_code == 403
    assert not opted_out(contact)


def test_help_is_answered_with_the_configured_text(client, settings):
    settings.SMS_HELP_TEXT = "Acme on-call alerts. Reply STOP to stop & START to resume."
    response = reply(client, ContactFactory().phone, " help ")
    assert response.status_code == 200
    assert b"<Message>Acme on-call alerts. Reply STOP to stop &amp; START to resume.</Message>" in response.content


def test_keywords_from_a_number_no_contact_has_change_nothing(client):
    contact = ContactFactory(phone="+14155550133")
    assert reply(client, "+14155550999", "STOP").status_code == 200
    assert reply(client, "not a number", "STOP").status_code == 200
    assert not opted_out(contact)


def test_ack_still_acknowledges_and_is_not_an_opt_out(client):
    contact = ContactFactory()
    alert = AlertFactory(recipients=[contact])
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now() - timedelta(minutes=1))
    Delivery.objects.create(
        occurrence=occurrence, contact=contact, channel="sms", state=DeliveryState.SENT,
        created_at=timezone.now() - timedelta(minutes=1),
    )  # fmt: skip
    assert b"Acknowledged:" in reply(client, contact.phone, "ok").content
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED and not opted_out(contact)


def test_the_contact_list_shows_and_filters_the_opt_out(admin_client):
    out = ContactFactory(name="Opted Out Olga", sms_opted_out_at=timezone.now(), sms_opt_out_source="reply STOP (SMa)")
    ContactFactory(name="Still In Ivan")
    page = admin_client.get("/admin/alerts/contact/").content.decode()
    assert "SMS opt-out" in page and "reply STOP (SMa)" in page
    only_out = admin_client.get("/admin/alerts/contact/?sms_opted_out=yes").content.decode()
    assert "Opted Out Olga" in only_out and "Still In Ivan" not in only_out
    only_in = admin_client.get("/admin/alerts/contact/?sms_opted_out=no").content.decode()
    assert "Still In Ivan" in only_in and "Opted Out Olga" not in only_in
    change = admin_client.get(f"/admin/alerts/contact/{out.pk}/change/").content.decode()
    assert 'name="sms_opted_out_at' not in change, "the opt-out is read-only on the contact's page"


def test_an_admin_with_change_permission_clears_the_opt_out(admin_client):
    contact = ContactFactory(sms_opted_out_at=timezone.now(), sms_opt_out_source="Twilio error 21610")
    response = admin_client.post(
        "/admin/alerts/contact/", {"action": "clear_sms_opt_out", "_selected_action": [contact.pk]}, follow=True
    )
    assert "Cleared the SMS opt-out of 1 contact(s)" in response.content.decode()
    assert not opted_out(contact)


def test_a_staff_user_who_may_only_view_cannot_clear_the_opt_out(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_contact"))
    client.force_login(viewer)
    contact = ContactFactory(sms_opted_out_at=timezone.now())
    response = client.post("/admin/alerts/contact/", {"action": "clear_sms_opt_out", "_selected_action": [contact.pk]})
    assert response.status_code == 403
    assert opted_out(contact)


@pytest.mark.parametrize("value", ["   ", "x" * 1601])
def test_a_blank_or_too_long_help_text_stops_start_up(tmp_path, value):
    result = start(tmp_path, SECRET_KEY="x" * 50, SMS_HELP_TEXT=value)
    assert result.returncode != 0
    assert "SMS_HELP_TEXT must be 1 to 1600 characters" in result.stderr


def test_a_21610_in_a_signed_status_callback_opts_the_phone_out(client):
    contact = ContactFactory()
    occurrence = Occurrence.objects.create(alert=AlertFactory(recipients=[contact]), scheduled_for=timezone.now())
    sent = Delivery.objects.create(
        occurrence=occurrence, contact=contact, channel="sms", state=DeliveryState.SENT, address=contact.phone,
        provider_id="SM" + "3" * 32,
    )  # fmt: skip
    params = {"MessageSid": sent.provider_id, "MessageStatus": "failed", "ErrorCode": "21610"}
    assert post_signed(client, "/alerts/twilio/status", params).status_code == 204
    contact.refresh_from_db()
    assert contact.sms_opt_out_source == "Twilio error 21610"
    assert Delivery.objects.get(pk=sent.pk).state == DeliveryState.FAILED
