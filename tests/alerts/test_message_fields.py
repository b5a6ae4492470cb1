"""What a message template may read: the documented fields of its contact and alert, never the rows behind them.

A template's author may receive what it renders (at a webhook of their own, in the form's preview), so a
template that walks relations or reads secrets must find nothing there.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts.messages import channel_text, email_subject
from alerts.models import Delivery, Occurrence
from alerts.validators import validate_message_template
from tests.alerts.factories import AlertFactory, ContactFactory

pytestmark = pytest.mark.django_db

# Each reads something its author must not see: the recipient's signing secret, its deliveries' errors (other
# alerts' failures), the alert's other recipients, and a walk from there to another contact's secret.
PRYING = (
    "Hi {{ contact.name }}|{{ contact.webhook_secret }}|{{ contact.deliveries.all.0.error }}"
    "|{{ alert.recipients.all }}|{{ alert.recipients.all.1.webhook_secret }}"
)
PREVIEW = "/admin/alerts/alert/preview/message/"
SCHEDULE_PREVIEW = "/admin/alerts/alert/preview/"


@pytest.fixture
def ada() -> object:
    """A recipient with a past delivery whose error names another alert."""
    ada = ContactFactory(name="Ada", phone="+442079460958", email="ada@example.com")
    other = Occurrence.objects.create(alert=AlertFactory(recipients=[ada]), scheduled_for=timezone.now())
    Delivery.objects.create(occurrence=other, contact=ada, channel="sms", error="Payroll run failed: disk full")
    return ada


def test_a_text_renders_the_documented_fields_of_its_contact_and_alert(ada):
    message = "{{ contact }}: {{ contact.name }} {{ contact.phone }} {{ contact.email }}; {{ alert }} #{{ alert.pk }}"
    alert = AlertFactory(recipients=[ada], name="Boiler", message=message, email_subject="[{{ alert.name }}]")
    expected = f"Ada: Ada +442079460958 ada@example.com; Boiler #{alert.pk}"
    assert channel_text(alert, contact=ada, channel="sms") == expected
    assert email_subject(alert, contact=ada) == "[Boiler]"


def test_a_text_reads_nothing_else_of_its_contact_or_alert(ada):
    alert = AlertFactory(recipients=[ada, ContactFactory(name="Bob")], message=PRYING, email_subject=PRYING)
    for channel in ("sms", "email", "webhook"):
        assert channel_text(alert, contact=ada, channel=channel) == "Hi Ada||||"
    assert email_subject(alert, contact=ada) == "Hi Ada||||"


def test_the_validator_renders_what_a_delivery_renders():
    # Its stand-ins have the fields a delivery gives, no more and no fewer.
    validate_message_template("{{ alert.pk }}")
    validate_message_template("{{ contact.email }}")
    with pytest.raises(ValidationError, match="renders to nothing"):
        validate_message_template("{{ contact.webhook_secret }}{{ alert.recipients.all }}")


def test_the_preview_shows_nothing_of_the_recipient_beyond_the_documented_fields(admin_client, ada):
    bob = ContactFactory(name="Bob")
    data = {"name": "Boiler", "message": PRYING, "email_subject": PRYING, "recipients": [ada.pk, bob.pk]}
    page = admin_client.get(PREVIEW, data).content.decode()
    assert "For Ada." in page and "Hi Ada||||\n\nAcknowledge: " in page
    assert "Subject: <strong>Hi Ada||||</strong>" in page
    for secret in (ada.webhook_secret, bob.webhook_secret, "Payroll", "QuerySet"):
        assert secret not in page


@pytest.fixture
def staff_client(client, django_user_model):
    """A client logged in as staff with the alert permissions given by codename."""

    def login(*codenames: str):
        user = django_user_model.objects.create_user("staff", password="pw-for-tests-only", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client.force_login(user)
        return client

    return login


@pytest.mark.parametrize("url", [PREVIEW, SCHEDULE_PREVIEW])
def test_the_previews_refuse_staff_who_may_not_add_or_change_alerts(staff_client, ada, url):
    client = staff_client("view_alert", "view_contact")
    response = client.get(url, {"name": "Boiler", "message": PRYING, "recipients": [ada.pk]})
    assert response.status_code == 403
    assert ada.webhook_secret not in response.content.decode()


@pytest.mark.parametrize("permission", ["add_alert", "change_alert"])
@pytest.mark.parametrize("url", [PREVIEW, SCHEDULE_PREVIEW])
def test_the_previews_serve_staff_who_may_add_or_change_alerts(staff_client, ada, url, permission):
    response = staff_client(permission).get(url, {"name": "Boiler", "message": "Hi {{ contact.name }}"})
    assert response.status_code == 200


def test_staff_allowed_only_to_look_see_the_saved_alerts_preview_on_its_page(staff_client, ada):
    alert = AlertFactory(recipients=[ada], name="Boiler", message=PRYING)
    page = staff_client("view_alert").get(f"/admin/alerts/alert/{alert.pk}/change/").content.decode()
    assert "id='message-preview'" in page and "Hi Ada||||\n\nAcknowledge: " in page
    assert ada.webhook_secret not in page
