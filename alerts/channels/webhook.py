"""Webhooks: the alert as signed JSON, POSTed to the contact's URL.

One generic channel for whatever sits behind a URL (a chat bot, a ticket system, a relay to Slack or
Teams), as healthchecks' webhook integration is. The receiver checks the signature (README, "Webhook
channel"): ``X-Alerting-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` keyed with the
contact's signing secret, Stripe's scheme, so that a captured request cannot be replayed after the
receiver's tolerance (the timestamp is signed) and a body cannot be altered.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import time
from datetime import UTC
from urllib.parse import urlsplit

import requests
from django.conf import settings

from alerts.channels.base import DeliveryChannel, DeliveryError, Envelope, SentMessage, Transport

SIGNATURE_HEADER = "X-Alerting-Signature"
TIMESTAMP_HEADER = "X-Alerting-Timestamp"
DELIVERY_HEADER = "X-Alerting-Delivery"
# Raised when the JSON's shape changes in a way a receiver must know about.
PAYLOAD_VERSION = 1
USER_AGENT = f"alerting-webhook/{PAYLOAD_VERSION}"
# How much of a refusal's body the delivery record keeps: enough for "invalid_token", not a whole page.
ERROR_BODY_CHARS = 200
# How much of an answer's body is read: a small one is read whole, so that its connection is kept alive.
BODY_READ_BYTES = 8192


def webhook_channel() -> Transport:
    return _webhook_for(float(settings.WEBHOOK_TIMEOUT_SECONDS), bool(settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS))


_sessions = threading.local()


def _webhook_for(timeout: float, allow_private: bool) -> Webhook:
    """One transport (and its keep-alive session) per thread: a ``requests.Session`` is not thread-safe,
    and the webhook queue runs on the threads worker. A change of settings gets a new one."""
    key = (timeout, allow_private)
    cached = getattr(_sessions, "by_settings", None)
    if cached is None or cached[0] != key:
        cached = _sessions.by_settings = (key, Webhook(timeout=timeout, allow_private=allow_private))
    return cached[1]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def payload(envelope: Envelope, *, text: str) -> dict[str, object]:
    """The JSON a receiver gets; README, "Webhook channel", documents each field."""
    return {
        "version": PAYLOAD_VERSION,
        "delivery_id": envelope.delivery_id,
        "alert": {"id": envelope.alert_id, "name": envelope.alert_name, "urgent": envelope.urgent},
        "occurrence": {
            "id": envelope.occurrence_id,
            "scheduled_for": envelope.scheduled_for.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
        "contact": {"id": envelope.contact_id, "name": envelope.contact_name},
        "message": envelope.text,
        "ack_url": envelope.acknowledge_url,
        # The message with its link, as an SMS reads: what a chat's incoming webhook shows when it reads "text".
        "text": text,
    }


def _reason(exc: requests.RequestException) -> str:
    """The error without the URL's path, which for a chat's incoming webhook is its credential: the job page
    shows this text to whoever may view jobs."""
    cause = exc.args[0] if exc.args else exc
    return str(getattr(cause, "reason", cause))  # urllib3's MaxRetryError names the URL; its reason does not


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP ``Retry-After`` (seconds, or an HTTP date) as seconds from now; ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def body_start(response: requests.Response, *, deadline: float) -> str:
    """The first ``BODY_READ_BYTES`` of a streamed answer, read until ``deadline`` (``time.monotonic()``) at
    most: the read timeout applies to each read, and a receiver dripping its body must not hold a thread."""
    chunks, size = [], 0
    for chunk in response.iter_content(1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= BODY_READ_BYTES or time.monotonic() > deadline:
            break
    return b"".join(chunks).decode(errors="replace")


def response_error(response: requests.Response, body: str) -> DeliveryError | None:
    """What the receiver's answer means: ``None`` for 2xx, else a DeliveryError saying whether to retry."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    said = " ".join(body[:ERROR_BODY_CHARS].split())
    message = f"the webhook answered HTTP {status} {response.reason or ''}".rstrip() + (f": {said}" if said else "")
    if 300 <= status < 400:
        # Not followed: the signed request would go to a host the contact never named. The same URL will
        # redirect again, so a retry cannot help; the contact's URL needs the new address.
        where = response.headers.get("Location", "")
        return DeliveryError(f"{message} (redirects are not followed; set the URL to {where!r})", permanent=True,
                             code=status)  # fmt: skip
    if status in (408, 429) or status >= 500:
        # 408: the receiver's own timeout; 429: too many requests; 5xx: its trouble. Retry-After (429, 503)
        # says when the next attempt can help; without it the alert's retry delay applies.
        return DeliveryError(
            message, permanent=False, code=status, retry_after=retry_after_seconds(response.headers.get("Retry-After"))
        )
    # Any other 4xx (not found, gone, unauthorized, a body it refuses): the same POST gets the same answer.
    return DeliveryError(message, permanent=True, code=status)


def refuse_private_address(url: str) -> None:
    """Raise unless every address ``url``'s host resolves to is a public one (WEBHOOK_ALLOW_PRIVATE_NETWORKS off).

    The host is resolved again when connecting; a name that answers differently the second time (DNS
    rebinding) gets past this check. Against that, resolve webhook hosts through a resolver you control, or
    give the workers no route to what they must not reach.
    """
    parts = urlsplit(url)
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve the webhook's host {parts.hostname!r}: {exc}", permanent=False,
                            code="dns") from exc  # fmt: skip
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])  # without an IPv6 zone
        if not address.is_global:
            raise DeliveryError(
                f"the webhook's host {parts.hostname!r} is {address}, a private or reserved address, and "
                "WEBHOOK_ALLOW_PRIVATE_NETWORKS is off",
                permanent=True,
                code="private-address",
            )


class Webhook(Transport):
    """A signed JSON POST; the provider id is the delivery id, which the receiver has too."""

    name = "webhook"

    def __init__(self, *, timeout: float = 10.0, allow_private: bool = True) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.session = requests.Session()

    def send(self, *, to: str, body: str, subject: str = "", envelope: Envelope | None = None) -> SentMessage:
        if envelope is None:
            raise TypeError("a webhook needs the delivery's envelope: ids, names and the signing secret")
        if not self.allow_private:
            refuse_private_address(to)
        data = json.dumps(payload(envelope, text=body), ensure_ascii=False, separators=(",", ":")).encode()
        # Signed at each attempt, so that a retry an hour later is within the receiver's tolerance.
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(envelope.signing_secret, timestamp, data),
            TIMESTAMP_HEADER: str(timestamp),
            DELIVERY_HEADER: envelope.delivery_id,
            # The name receivers of Stripe-style APIs dedupe on; the same on every attempt of the delivery.
            "Idempotency-Key": envelope.delivery_id,
        }
        try:
            response = self.session.post(to, data=data, headers=headers, timeout=(self.timeout, self.timeout),
                                         allow_redirects=False, stream=True)  # fmt: skip
            with response:
                error = response_error(response, body_start(response, deadline=time.monotonic() + self.timeout))
        except requests.ConnectTimeout as exc:
            # Before Timeout and ConnectionError: it is both, and nothing reached the receiver.
            raise DeliveryError(f"the webhook did not accept a connection: {_reason(exc)}", permanent=False,
                                code="connect-timeout") from exc  # fmt: skip
        except requests.Timeout as exc:
            # The POST went out: the receiver may have it. The retry sends it again with the same delivery
            # id (a webhook cannot be asked what it received); the receiver drops the repeat.
            raise DeliveryError(
                f"the webhook did not answer in time (it may have received it): {_reason(exc)}",
                permanent=False,
                code="read-timeout",
            ) from exc
        except requests.exceptions.SSLError as exc:
            # Before ConnectionError, which it is: an expired or wrong certificate, which its owner can fix.
            raise DeliveryError(
                f"TLS failed with the webhook: {_reason(exc)}", permanent=False, code="tls-error"
            ) from exc
        except requests.ConnectionError as exc:
            raise DeliveryError(
                f"cannot reach the webhook: {_reason(exc)}", permanent=False, code="connection-error"
            ) from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema) as exc:
            # A URL saved before validation, or edited around it: no retry makes it valid.
            raise DeliveryError(f"invalid webhook URL: {exc}", permanent=True, code="invalid-url") from exc
        except requests.RequestException as exc:
            # A broken answer (truncated, bad encoding): the receiver's trouble, worth another try.
            raise DeliveryError(
                f"the webhook request failed: {type(exc).__name__}: {_reason(exc)}",
                permanent=False,
                code="request-error",
            ) from exc
        if error is not None:
            raise error
        return SentMessage(provider_id=envelope.delivery_id)


CHANNEL = DeliveryChannel(name="webhook", contact_field="webhook_url", queue="webhook", transport=webhook_channel)
