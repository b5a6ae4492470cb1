"""The delivery channels against local fakes: real HTTP to a fake Twilio API, real SMTP to aiosmtpd."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.channels import (
    DeliveryError,
    DjangoEmail,
    LocalSmsSink,
    SentMessage,
    TwilioSms,
    email_channel,
    sms_channel,
)
from alerts.channels.sms import SINK_NOTE, BaseUrlHttpClient
from tests.alerts.conftest import TWILIO_FROM_NUMBER
from tests.fakes.smtp import free_port

TO = "+14155550123"


def send_sms(body: str = "Disk almost full") -> SentMessage:
    return sms_channel().send(to=TO, body=body)


# --- SMS through Twilio ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_sms_reaches_the_twilio_api_through_the_official_sdk(fake_twilio, settings):
    channel = sms_channel()
    assert isinstance(channel, TwilioSms)

    sent = channel.send(to=TO, body="Hi Ada, the backup failed", subject="ignored for SMS")

    [received] = fake_twilio.messages
    assert (received.to, received.from_, received.body) == (TO, TWILIO_FROM_NUMBER, "Hi Ada, the backup failed")
    assert received.status_callback == f"{settings.PUBLIC_BASE_URL}/alerts/twilio/status"
    assert sent.provider_id == received.sid
    assert sent.provider_id.startswith("SM") and len(sent.provider_id) == 34
    assert not sent.via_sink


@pytest.mark.django_db
@pytest.mark.parametrize("code", [21211, 21614], ids=["invalid-number", "not-a-mobile"])
def test_an_invalid_or_non_mobile_number_is_a_permanent_error(fake_twilio, code):
    fake_twilio.fail_next(status=400, code=code)

    with pytest.raises(DeliveryError) as caught:
        send_sms()

    assert caught.value.permanent
    assert caught.value.code == code
    assert str(code) in str(caught.value) and "HTTP 400" in str(caught.value)
    assert fake_twilio.messages == []
    assert fake_twilio.failed_count == 1


@pytest.mark.django_db
def test_other_client_errors_are_permanent(fake_twilio):
    fake_twilio.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")

    with pytest.raises(DeliveryError) as caught:
        send_sms()

    assert caught.value.permanent
    assert "unsubscribed recipient" in str(caught.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "code"),
    [(429, 20429), (429, None), (500, None), (503, None)],
    ids=["too-many-requests", "http-429", "server-error", "unavailable"],
)
def test_rate_limiting_and_server_errors_are_temporary(fake_twilio, status, code):
    fake_twilio.fail_next(status=status, code=code)

    with pytest.raises(DeliveryError) as caught:
        send_sms()

    assert not caught.value.permanent
    assert f"HTTP {status}" in str(caught.value)
    assert fake_twilio.messages == []


@pytest.mark.django_db
def test_a_retry_after_a_temporary_error_sends_exactly_once(fake_twilio, settings):
    # A fast limit, so the second send (same number) does not wait the default second.
    settings.SMS_PER_SECOND_PER_NUMBER = 100
    fake_twilio.fail_next(status=500)
    with pytest.raises(DeliveryError):
        send_sms("the disk is full")

    sent = send_sms("the disk is full")

    assert [message.sid for message in fake_twilio.messages] == [sent.provider_id]
    assert fake_twilio.failed_count == 1


@pytest.mark.django_db
def test_a_hung_provider_is_a_temporary_error_after_the_client_timeout(fake_twilio, settings):
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    fake_twilio.hang_next(30)

    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        send_sms()

    assert time.monotonic() - started < 10
    assert not caught.value.permanent
    assert caught.value.code == "read-timeout"


def found_sent(channel, *, attempt_started, body_start: str = "Boiler needs you.", to: str = TO) -> list[str]:
    return channel.find_sent(to=to, body_start=body_start, attempt_started=attempt_started)


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["twilio", "local sink"])
def test_a_message_is_found_only_in_the_time_of_the_attempt_that_may_have_sent_it(provider, request, settings):
    if provider == "twilio":
        request.getfixturevalue("fake_twilio")
        settings.TWILIO_HTTP_TIMEOUT = 0.5
    else:
        settings.TWILIO_ACCOUNT_SID = ""
    channel = sms_channel()
    sent = channel.send(to=TO, body="Boiler needs you.\n\nAcknowledge: https://alerts.example.com/a/1")
    channel.send(to=TO, body="Another alert")
    now = timezone.now()

    assert found_sent(channel, attempt_started=now) == [sent.provider_id]
    # The same text minutes after an attempt is not that attempt's message (the next occurrence's, say).
    assert found_sent(channel, attempt_started=now - timedelta(minutes=3)) == []
    assert found_sent(channel, attempt_started=now + timedelta(minutes=2)) == []
    assert found_sent(channel, attempt_started=now, body_start="Other text") == []
    assert found_sent(channel, attempt_started=now, to="+14155550199") == []


@pytest.mark.django_db
def test_wrong_credentials_are_a_permanent_error(fake_twilio, settings):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"

    with pytest.raises(DeliveryError) as caught:
        send_sms()

    assert caught.value.permanent
    assert caught.value.code == 20003
    assert "HTTP 401" in str(caught.value)
    assert fake_twilio.messages == []


@pytest.mark.django_db
def test_an_unreachable_provider_is_a_temporary_error(fake_twilio, settings):
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(DeliveryError) as caught:
        send_sms()

    assert not caught.value.permanent
    assert caught.value.code == "connection-error"


@pytest.mark.django_db
def test_a_send_never_waits_for_the_sending_rate(fake_twilio, settings):
    """Pacing is the caller's business (reserve, then come back); send itself goes at once."""
    settings.SMS_PER_SECOND_PER_NUMBER = 0.001  # a slot every 1,000 s: a sleep would show

    for index in range(3):
        send_sms(f"message {index}")

    assert len(fake_twilio.messages) == 3


@pytest.mark.django_db
def test_reservations_are_spaced_by_the_segments_each_message_costs(fake_twilio, settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 0.01  # 100 s per segment: far longer than the test
    channel = sms_channel()

    first = channel.reserve(body="short")
    second = channel.reserve(body="x" * 200)  # GSM-7, 2 segments
    third = channel.reserve(body="short")

    assert first == 0
    assert 98 < second <= 100, "after the 1-segment first message"
    assert 298 < third <= 300, "after 1 + 2 segments"


@pytest.mark.django_db
def test_without_a_sending_rate_nothing_is_reserved(fake_twilio, settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 0

    assert [sms_channel().reserve(body="hello") for _ in range(3)] == [0, 0, 0]


@pytest.mark.django_db
@pytest.mark.parametrize(("setting", "sent"), [(None, "3600"), (600, "600"), (0, "")], ids=["default", "10min", "off"])
def test_each_sms_carries_the_validity_period(fake_twilio, settings, setting, sent):
    """A reminder stuck in Twilio's queue expires there instead of arriving hours late."""
    if setting is not None:
        settings.SMS_VALIDITY_PERIOD_SECONDS = setting

    send_sms()

    assert fake_twilio.messages[0].validity_period == sent


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "code"),
    [(429, 20429), (429, None), (400, 21611), (400, 30001)],
    ids=["too-many-requests", "http-429", "queue-full", "queue-overflow"],
)
def test_a_full_queue_or_too_many_requests_is_retried_in_seconds(fake_twilio, status, code):
    fake_twilio.fail_next(status=status, code=code)

    with pytest.raises(DeliveryError) as caught:
        send_sms()

    assert not caught.value.permanent
    assert 5 <= caught.value.retry_after <= 30


@pytest.mark.django_db
def test_an_outage_is_left_to_the_alerts_retry_delay(fake_twilio):
    fake_twilio.fail_next(status=503)

    with pytest.raises(DeliveryError) as caught:
        send_sms()

    assert not caught.value.permanent and caught.value.retry_after is None


def test_the_base_url_replaces_twilios_host_and_keeps_a_path_prefix():
    client = BaseUrlHttpClient("http://127.0.0.1:8081/twilio/")

    rebased = client.rebase("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2")

    assert rebased == "http://127.0.0.1:8081/twilio/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"


@pytest.mark.django_db
def test_a_proxy_from_the_environment_carries_the_sms_and_is_read_once(fake_twilio, settings, monkeypatch):
    # The fake stands in for the proxy: a host that does not resolve is reached only through it.
    settings.TWILIO_API_BASE_URL = "http://twilio.invalid"
    monkeypatch.setenv("HTTP_PROXY", fake_twilio.url)
    channel = TwilioSms.from_settings()
    monkeypatch.delenv("HTTP_PROXY")

    sent = channel.send(to=TO, body="Through the proxy")

    assert [m.sid for m in fake_twilio.messages] == [sent.provider_id]


@pytest.mark.django_db
def test_no_proxy_from_the_environment_sends_twilios_host_around_the_proxy(fake_twilio, settings, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    TwilioSms.from_settings().send(to=TO, body="Around the proxy")

    assert [m.body for m in fake_twilio.messages] == ["Around the proxy"]


# --- SMS into the local sink ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"])
def test_without_a_complete_twilio_configuration_sms_go_to_the_local_sink(fake_twilio, settings, missing):
    from alerts.models import SendSlot, SmsSinkMessage

    setattr(settings, missing, "")
    channel = sms_channel()
    assert isinstance(channel, LocalSmsSink)

    sent = channel.send(to=TO, body="Hi Ada")
    sent_again = channel.send(to=TO, body="Hi again")

    record = SmsSinkMessage.objects.get(body="Hi Ada")
    assert (record.to, record.sender) == (TO, settings.TWILIO_FROM_NUMBER)
    assert sent.provider_id == f"sink-{record.pk}"
    assert sent.via_sink and sent.note == SINK_NOTE
    assert sent_again.provider_id != sent.provider_id
    assert fake_twilio.messages == []
    # Nothing real is sent, so nothing is rate limited.
    assert not SendSlot.objects.exists()


# --- Email ----------------------------------------------------------------------------------------------


def test_an_email_reaches_the_smtp_server(fake_smtp, settings):
    channel = email_channel()
    assert isinstance(channel, DjangoEmail)

    sent = channel.send(to="ada@example.com", subject="Backup failed", body="Hi Ada,\nthe backup failed.")

    [received] = fake_smtp.messages
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.mail_from == settings.DEFAULT_FROM_EMAIL
    assert received.message["Subject"] == "Backup failed"
    assert received.message["To"] == "ada@example.com"
    assert received.message.get_content().strip() == "Hi Ada,\nthe backup failed."
    assert received.message["Message-ID"] == sent.provider_id
    assert not sent.via_sink


def test_the_message_id_uses_the_senders_domain(fake_smtp, settings):
    settings.DEFAULT_FROM_EMAIL = "Alerts <alerts@example.org>"

    sent = email_channel().send(to="ada@example.com", subject="s", body="b")

    assert sent.provider_id.startswith("<") and sent.provider_id.endswith("@example.org>")
    assert fake_smtp.messages[0].message["From"] == "Alerts <alerts@example.org>"


def test_a_refused_recipient_is_a_permanent_error(fake_smtp):
    fake_smtp.refuse_next_recipient(550)

    with pytest.raises(DeliveryError) as caught:
        email_channel().send(to="nobody@example.com", subject="s", body="b")

    assert caught.value.permanent
    assert caught.value.code == 550
    assert "550" in str(caught.value) and "nobody@example.com" in str(caught.value)
    assert fake_smtp.messages == []


def test_a_recipient_deferred_with_a_4xx_code_is_a_temporary_error(fake_smtp):
    fake_smtp.refuse_next_recipient(451)

    with pytest.raises(DeliveryError) as caught:
        email_channel().send(to="ada@example.com", subject="s", body="b")

    assert not caught.value.permanent
    assert caught.value.code == 451
    assert fake_smtp.messages == []


def test_an_smtp_server_that_is_down_is_a_temporary_error(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_TIMEOUT = 5

    with pytest.raises(DeliveryError) as caught:
        email_channel().send(to="ada@example.com", subject="s", body="b")

    assert not caught.value.permanent
    assert caught.value.code == "connection-error"


def test_an_address_with_a_newline_is_a_permanent_error(fake_smtp):
    with pytest.raises(DeliveryError) as caught:
        email_channel().send(to="ada@example.com\nBcc: everyone@example.com", subject="s", body="b")

    assert caught.value.permanent
    assert fake_smtp.messages == []
