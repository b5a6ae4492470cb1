"""The webhook channel through the API: a contact's webhook URL and read-only secret, alerts sending by webhook."""

from __future__ import annotations

import pytest

from alerts.models import Alert, Contact
from tests.alerts.factories import ContactFactory


@pytest.mark.django_db
def test_the_api_takes_a_webhook_url_and_returns_the_generated_secret_read_only(api):
    response = api.post(
        "/api/v1/contacts/",
        {"name": "Ada", "webhook_url": "http://relay:8080/hook", "webhook_secret": "mine"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    contact = Contact.objects.get()
    assert body["webhook_url"] == contact.webhook_url == "http://relay:8080/hook"
    assert body["webhook_secret"] == contact.webhook_secret != "mine"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["ftp://files.example.com/x", "not a url", "https://", "http://x:99999/"])
def test_the_api_refuses_an_invalid_webhook_url_keyed_by_field(api, url):
    response = api.post("/api/v1/contacts/", {"name": "Ada", "webhook_url": url}, format="json")
    assert response.status_code == 400
    assert "e.g. https://" in " ".join(response.json()["webhook_url"])
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_an_alert_may_use_the_webhook_channel_alone_through_the_api(api):
    contact = ContactFactory(webhook_url="https://hooks.example.com/a")
    response = api.post(
        "/api/v1/alerts/",
        {"name": "Disk", "message": "Hi", "recipients": [contact.pk], "schedule_kind": "once",
         "send_at": "2099-01-01T09:00", "send_sms": False, "send_webhook": True},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    assert response.json()["send_webhook"] is True
    assert Alert.objects.get().channels == ["webhook"]


@pytest.mark.django_db
def test_an_alert_with_no_channel_at_all_is_refused_naming_the_webhook_too(api):
    response = api.post(
        "/api/v1/alerts/",
        {"name": "Disk", "message": "Hi", "recipients": [ContactFactory().pk], "schedule_kind": "once",
         "send_at": "2099-01-01T09:00", "send_sms": False, "send_email": False, "send_webhook": False},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert "SMS, email or webhook" in " ".join(response.json()["send_sms"])
