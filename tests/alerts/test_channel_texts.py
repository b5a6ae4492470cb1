"""Per-channel texts on the alert form, with the live preview of what a recipient receives."""

from __future__ import annotations

import pytest

from alerts.models import Alert
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.alerts.test_admin_form import alert_form, errors_of

pytestmark = pytest.mark.django_db
PREVIEW = "/admin/alerts/alert/preview/message/"


def preview(client, **fields) -> str:
    data = {"name": "Boiler", "message": "Hi {{ contact.name }}, {{ alert.name }} needs you.", **fields}
    response = client.get(PREVIEW, data)
    assert response.status_code == 200
    return response.content.decode()


def test_the_preview_shows_the_sms_for_the_first_recipient_with_its_size(admin_client):
    ContactFactory(name="Zoe")
    bob = ContactFactory(name="Bob")
    page = preview(admin_client, sms_text="{{ alert.name }}: {{ contact.name }}, come", recipients=[bob.pk])
    assert "For Bob." in page and "Boiler: Bob, come\n\nAcknowledge: " in page
    assert "GSM-7 · 1 SMS" in page and "(160 characters per SMS" in page
    assert "cannot be sent in GSM-7" not in page


def test_the_preview_warns_about_the_character_that_forces_ucs2(admin_client):
    page = preview(admin_client, message="It\u2019s {{ alert.name }} again, " + "x" * 60)
    assert "(a sample contact" in page
    # 79 characters of text, then the acknowledgement link the delivery adds: 197 in all, more than 2 x 67.
    assert "197 characters · UCS-2 · 3 SMS" in page and "(67 UTF-16 units per SMS" in page
    assert "right single quotation mark" in page and "70 characters per SMS instead of 160" in page


def test_the_preview_counts_extension_characters_double(admin_client):
    page = preview(admin_client, sms_text="Costs 5€ [now]")
    assert "counted: characters such as €" in page


def test_the_preview_shows_the_email_subject_and_body_with_their_fallbacks(admin_client):
    page = preview(admin_client, recipients=[ContactFactory(name="Ann").pk])
    assert "Subject: <strong>Boiler</strong>" in page and "Hi Ann, Boiler needs you.</pre>" in page
    page = preview(admin_client, email_subject="[urgent] {{ alert.name }}", email_body="Dear {{ contact.name }}")
    assert "Subject: <strong>[urgent] Boiler</strong>" in page and "Dear Ada Lovelace</pre>" in page


def test_the_preview_shows_template_errors_of_each_text(admin_client):
    page = preview(admin_client, sms_text="Hi {{ contact.name")
    assert "Sms text: The message is not a valid template" in page.replace("SMS text", "Sms text")
    assert "Acknowledge:" not in page


@pytest.mark.parametrize("field", ["sms_text", "email_subject", "email_body"])
def test_each_channel_text_is_validated_like_the_message(admin_client, field):
    response = admin_client.post("/admin/alerts/alert/add/", alert_form(**{field: "Hi {{ contact.name"}))
    assert response.status_code == 200
    assert "is not closed" in " ".join(errors_of(response)[field])
    assert not Alert.objects.exists()


def test_the_change_page_has_the_texts_and_their_preview(admin_client):
    alert = AlertFactory(sms_text="{{ alert.name }} now")
    page = admin_client.get(f"/admin/alerts/alert/{alert.pk}/change/").content.decode()
    for name in ("sms_text", "email_subject", "email_body", "fallback_to_other_channel"):
        assert f'name="{name}"' in page
    assert "id='message-preview'" in page and f"{alert.name} now" in page and "alerts/preview.js" in page
