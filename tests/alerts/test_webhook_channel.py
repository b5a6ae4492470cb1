"""The webhook transport against a real local receiver: the signed JSON it POSTs, and what each answer means.

The worker's side (jobs, retries, delivery rows) is in tests/alerts/test_webhook_delivery.py.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import time
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from alerts.channels import DeliveryError, Envelope, Webhook, webhook_channel
from alerts.channels.webhook import sign
from alerts.validators import validate_webhook_url
from tests.fakes.webhook_receiver import WebhookReceiver

SECRET = "whsec_test-secret"
README = Path(__file__).resolve().parents[2] / "README.md"
ENVELOPE = Envelope(
    delivery_id="0b5a3d2e-3f0c-5c1e-9d7e-2f4f3f4b9a10",
    alert_id=12,
    alert_name="Boiler",
    urgent=True,
    occurrence_id=345,
    scheduled_for=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
    contact_id=7,
    contact_name="Ada “the first” Lovelace",
    text="Hi Ada, Boiler needs you.",
    acknowledge_url="https://alerts.example.com/alerts/ack/abc/",
    signing_secret=SECRET,
)
BODY = "Hi Ada, Boiler needs you.\n\nAcknowledge: https://alerts.example.com/alerts/ack/abc/"


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET) as receiver:
        yield receiver


def post(receiver: WebhookReceiver, *, path: str = "/hooks/ada", timeout: float = 5.0):
    return Webhook(timeout=timeout).send(to=receiver.url + path, body=BODY, envelope=ENVELOPE)


def test_a_webhook_posts_the_documented_json_signed_with_the_contacts_secret(receiver):
    before = int(time.time())
    sent = post(receiver)

    [request] = receiver.requests
    assert request.path == "/hooks/ada" and request.signature_valid
    assert request.json == {
        "version": 1,
        "delivery_id": ENVELOPE.delivery_id,
        "alert": {"id": 12, "name": "Boiler", "urgent": True},
        "occurrence": {"id": 345, "scheduled_for": "2026-11-30T09:00:00Z"},
        "contact": {"id": 7, "name": "Ada “the first” Lovelace"},
        "message": "Hi Ada, Boiler needs you.",
        "ack_url": "https://alerts.example.com/alerts/ack/abc/",
        "text": BODY,
    }
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Alerting-Delivery"] == headers["Idempotency-Key"] == ENVELOPE.delivery_id
    timestamp = int(headers["X-Alerting-Timestamp"])
    assert before <= timestamp <= time.time()
    assert headers["X-Alerting-Signature"] == sign(SECRET, timestamp, request.body)
    assert sent.provider_id == ENVELOPE.delivery_id and not sent.via_sink


def test_the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_raw_body():
    digest = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, b"{}") == f"t=1700000000,v1={digest}"


def readme_verify():
    """The verification snippet exactly as the README shows it, run as a receiver would paste it."""
    text = README.read_text()
    [code] = re.findall(r"<!-- webhook-verification:[^>]*-->\n```python\n(.*?)```", text, flags=re.S)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace["verify"]


def test_the_readmes_verification_snippet_accepts_a_real_signature_and_refuses_forgeries_and_replays(receiver):
    verify = readme_verify()
    post(receiver)
    [request] = receiver.requests
    header = request.headers["X-Alerting-Signature"]

    assert verify(SECRET, header, request.body)
    assert not verify("whsec_another", header, request.body), "another contact's secret"
    assert not verify(SECRET, header, request.body.replace(b"Boiler", b"Boi1er")), "an altered body"
    stale = int(time.time()) - 301
    assert not verify(SECRET, sign(SECRET, stale, request.body), request.body), "a replay past the tolerance"
    assert verify(SECRET, sign(SECRET, stale + 10, request.body), request.body)
    for garbage in ("", "t=abc,v1=00", "v1=" + "0" * 64, "nonsense"):
        assert not verify(SECRET, garbage, request.body), garbage


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_sent(receiver, status):
    receiver.answer_next(status, body=b'{"ok": true}')
    assert post(receiver).provider_id == ENVELOPE.delivery_id


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_a_4xx_is_permanent_with_the_status_as_its_code(receiver, status):
    receiver.answer_next(status, body=b"invalid_token")
    with pytest.raises(DeliveryError) as caught:
        post(receiver)
    assert (caught.value.permanent, caught.value.code, caught.value.retry_after) == (True, status, None)
    assert f"HTTP {status}" in str(caught.value) and "invalid_token" in str(caught.value)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_5xx_a_408_and_a_429_are_temporary(receiver, status):
    receiver.answer_next(status)
    with pytest.raises(DeliveryError) as caught:
        post(receiver)
    assert (caught.value.permanent, caught.value.code, caught.value.retry_after) == (False, status, None)


def test_retry_after_in_seconds_or_as_a_date_says_when_to_come_back(receiver):
    receiver.answer_next(429, headers={"Retry-After": "30"})
    with pytest.raises(DeliveryError) as caught:
        post(receiver)
    assert caught.value.retry_after == 30.0 and not caught.value.permanent

    receiver.answer_next(503, headers={"Retry-After": formatdate(time.time() + 120, usegmt=True)})
    with pytest.raises(DeliveryError) as caught:
        post(receiver)
    assert 110 <= caught.value.retry_after <= 121


def test_a_redirect_is_not_followed_and_is_permanent_naming_the_new_place(receiver):
    receiver.answer_next(301, headers={"Location": "https://elsewhere.example.com/hook"})
    with pytest.raises(DeliveryError) as caught:
        post(receiver)
    assert caught.value.permanent and caught.value.code == 301
    assert "https://elsewhere.example.com/hook" in str(caught.value)
    assert len(receiver.requests) == 1, "nothing was sent to the other place"


def test_a_long_refusal_is_kept_short_and_on_one_line(receiver):
    receiver.answer_next(400, body=b"<html>\n" + b"x" * 5000)
    with pytest.raises(DeliveryError) as caught:
        post(receiver)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_no_answer_in_time_is_temporary_and_the_receiver_has_it(receiver):
    receiver.answer_next(200, delay=1.5)
    with pytest.raises(DeliveryError) as caught:
        post(receiver, timeout=0.5)
    assert (caught.value.permanent, caught.value.code) == (False, "read-timeout")
    assert "may have received it" in str(caught.value)
    time.sleep(1.2)
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_temporary_and_its_message_leaves_the_urls_secret_path_out():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(DeliveryError) as caught:
        Webhook(timeout=2).send(to=f"http://127.0.0.1:{port}/services/T0/B0/s3cr3t-path", body=BODY, envelope=ENVELOPE)
    assert (caught.value.permanent, caught.value.code) == (False, "connection-error")
    assert "s3cr3t-path" not in str(caught.value)


def test_without_private_networks_a_loopback_receiver_is_refused_before_any_request(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(DeliveryError) as caught:
        webhook_channel().send(to=receiver.url + "/hook", body=BODY, envelope=ENVELOPE)
    assert (caught.value.permanent, caught.value.code) == (True, "private-address")
    assert "127.0.0.1" in str(caught.value) and "WEBHOOK_ALLOW_PRIVATE_NETWORKS" in str(caught.value)
    assert receiver.requests == []

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    webhook_channel().send(to=receiver.url + "/hook", body=BODY, envelope=ENVELOPE)
    assert len(receiver.requests) == 1


def test_the_channel_follows_its_settings_and_keeps_one_transport_per_thread(settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 3.0
    first = webhook_channel()
    assert first is webhook_channel() and first.timeout == 3.0
    settings.WEBHOOK_TIMEOUT_SECONDS = 4.0
    assert webhook_channel().timeout == 4.0


def test_a_webhook_without_its_envelope_is_a_programming_error(receiver):
    with pytest.raises(TypeError, match="envelope"):
        Webhook().send(to=receiver.url, body=BODY)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T000/B000/XXXX",
        "http://relay:8080/hook",
        "http://127.0.0.1:9000/",
        "http://[::1]:8080/alerts",
        "https://user:pass@example.com/hook?token=abc",
    ],
)
def test_webhook_urls_with_a_scheme_and_a_host_are_accepted(url):
    validate_webhook_url(url)


@pytest.mark.parametrize(
    "url, words",
    [
        ("hooks.example.com/alerts", "starts with https://"),
        ("ftp://files.example.com/x", "starts with https://"),
        ("javascript:alert(1)", "starts with https://"),
        ("https://", "has no host"),
        ("https:///path-only", "has no host"),
        ("https://exa mple.com/", "no spaces"),
        ("https://example.com:99999/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_other_webhook_urls_are_refused_saying_what_is_expected(url, words):
    with pytest.raises(ValidationError) as caught:
        validate_webhook_url(url)
    assert words in caught.value.messages[0] and "e.g. https://" in caught.value.messages[0]
