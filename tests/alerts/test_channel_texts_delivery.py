"""Each channel sends its own text, or the alert's message: real worker, fake Twilio and SMTP servers."""

from __future__ import annotations

import pytest

from alerts import services
from scheduler.models import ACTIVE_STATES, Job, State
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.alerts.test_message_fields import PRYING
from tests.conftest import wait_until
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture(autouse=True)
def fast_sms_rate(settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 1000


def test_the_sms_and_the_email_carry_their_own_texts(fake_twilio, fake_smtp):
    contact = ContactFactory(name="Ada")
    alert = AlertFactory(
        recipients=[contact], name="Boiler", send_email=True,
        sms_text="{{ alert.name }}: {{ contact.name }}, 90C",
        email_subject="[urgent] {{ alert.name }} for {{ contact.name }}",
        email_body="Dear {{ contact.name }},\n\nthe boiler is at 90C.",
    )  # fmt: skip
    services.alert_send_now(alert=alert)
    wait_until(lambda: not Job.objects.filter(state__in=ACTIVE_STATES).exists(), what="both jobs")
    assert set(Job.objects.values_list("state", flat=True)) == {State.SUCCEEDED}

    [sms] = fake_twilio.messages
    assert sms.body.startswith("Boiler: Ada, 90C\n\nAcknowledge: ")
    [email] = fake_smtp.messages
    assert email.message["Subject"] == "[urgent] Boiler for Ada"
    assert email.message.get_content().startswith("Dear Ada,\n\nthe boiler is at 90C.\n\nAcknowledge: ")


def test_a_text_reaches_its_recipient_without_what_the_template_may_not_read(fake_twilio):
    """The way a template's author reads what it renders: a webhook contact of their own among the recipients."""
    ada = ContactFactory(name="Ada")
    with WebhookReceiver(ada.webhook_secret) as receiver:
        ada.webhook_url = f"{receiver.url}/hooks/ada"
        ada.save()
        alert = AlertFactory(recipients=[ada, ContactFactory(name="Bob")], send_webhook=True, message=PRYING)
        services.alert_send_now(alert=alert)
        wait_until(lambda: not Job.objects.filter(state__in=ACTIVE_STATES).exists(), what="both jobs")
    assert set(Job.objects.values_list("state", flat=True)) == {State.SUCCEEDED}

    [request] = receiver.requests
    assert request.json["message"] == "Hi Ada||||"
    bodies = sorted(sms.body.split("\n\n")[0] for sms in fake_twilio.messages)
    assert bodies == ["Hi Ada||||", "Hi Bob||||"]
