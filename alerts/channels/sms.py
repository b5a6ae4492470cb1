"""SMS through Twilio's official SDK, or into a local sink when Twilio is not configured."""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from alerts.channels.base import Channel, DeliveryError, SentMessage
from alerts.channels.ratelimit import reserve_send_slot

logger = logging.getLogger(__name__)

# Where Twilio posts the message's status changes (queued, sent, delivered, undelivered, failed).
STATUS_CALLBACK_PATH = "/alerts/twilio/status"
# Twilio's codes for a recipient that no retry will fix: 21211 the 'To' number is not a valid phone
# number, 21614 the 'To' number is not a mobile number (cannot receive SMS), 21610 the recipient replied
# STOP (unsubscribed until it sends START).
PERMANENT_TWILIO_CODES = frozenset({21211, 21614, 21610})
# 20429: too many requests. Twilio also answers it with HTTP 429; either one means "later".
TEMPORARY_TWILIO_CODES = frozenset({20429})
SINK_NOTE = "Twilio is not configured: the SMS went to the local sink, not to a phone"


def twilio_configured() -> bool:
    """Whether every setting a real SMS needs is there (the system check warns about a partial set)."""
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER)


def sms_channel() -> Channel:
    """The SMS channel the settings ask for: Twilio when configured, otherwise the local sink."""
    if twilio_configured():
        return _twilio_for(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_FROM_NUMBER,
            settings.TWILIO_API_BASE_URL,
            settings.PUBLIC_BASE_URL,
            float(getattr(settings, "TWILIO_HTTP_TIMEOUT", 10)),
            float(getattr(settings, "SMS_PER_SECOND_PER_NUMBER", 1.0)),
        )
    return LocalSmsSink(sender=settings.TWILIO_FROM_NUMBER)


class BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, with every request's scheme and host replaced by ``base_url``.

    Why a custom HTTP client rather than another way of pointing the SDK elsewhere: ``http_client`` is
    the SDK's documented extension point (``Client(http_client=...)``), and ``request()`` is the single
    place every request passes through with its final URL. Setting ``client.api.base_url`` would also
    work, but it is an attribute of one generated domain class (Messages today; another domain such as
    messaging.twilio.com would still reach the real Twilio), and the client rewrites hosts after the
    domain built the URL when TWILIO_REGION or TWILIO_EDGE is in the environment. Here nothing can
    leave for api.twilio.com once a base URL is configured. A path in ``base_url`` is kept as a prefix.
    """

    def __init__(self, base_url: str, *, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.base = urlsplit(base_url)

    def rebase(self, url: str) -> str:
        parts = urlsplit(url)
        path = self.base.path.rstrip("/") + parts.path
        return urlunsplit((self.base.scheme, self.base.netloc, path, parts.query, parts.fragment))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def twilio_error(*, status: int, code: int | None, message: str) -> DeliveryError:
    """Map an error answer of Twilio's API to a DeliveryError that says whether a retry can help."""
    if code in PERMANENT_TWILIO_CODES:
        permanent = True
    elif code in TEMPORARY_TWILIO_CODES or status >= 500 or status in (408, 429):
        # 5xx: Twilio's trouble. 429: we are too fast. 408: a proxy timed out, like our own timeout.
        permanent = False
    else:
        # Any other 4xx (wrong credentials included): the same request will get the same answer.
        permanent = True
    return DeliveryError(f"Twilio error {code} (HTTP {status}): {message}", permanent=permanent, code=code or status)


@functools.lru_cache(maxsize=8)
def _twilio_for(*settings_values: object) -> TwilioSms:
    """One client (and its keep-alive HTTP session) per process and configuration, not one per message.

    The arguments are the settings it is built from, so a change of settings gets a new client.
    """
    return TwilioSms.from_settings()


class TwilioSms(Channel):
    """SMS through Twilio's Messages API, at most ``per_second`` messages per second per sending number."""

    name = "sms"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        status_callback: str = "",
        api_base_url: str = "",
        timeout: float = 10.0,
        per_second: float | None = 1.0,
    ) -> None:
        self.from_number = from_number
        self.status_callback = status_callback
        self.per_second = per_second
        # Without a timeout, requests waits forever on a provider that accepted the connection and then
        # hung, and so would the worker; with one, the hang becomes a temporary error the engine retries.
        http_client = (
            BaseUrlHttpClient(api_base_url, timeout=timeout) if api_base_url else TwilioHttpClient(timeout=timeout)
        )
        self.client = Client(account_sid, auth_token, http_client=http_client)

    @classmethod
    def from_settings(cls) -> TwilioSms:
        per_second = float(getattr(settings, "SMS_PER_SECOND_PER_NUMBER", 1.0))
        return cls(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=settings.TWILIO_FROM_NUMBER,
            status_callback=f"{settings.PUBLIC_BASE_URL}{STATUS_CALLBACK_PATH}",
            api_base_url=settings.TWILIO_API_BASE_URL,
            timeout=float(getattr(settings, "TWILIO_HTTP_TIMEOUT", 10)),
            # 0 turns the limit off (a Twilio-compatible endpoint without Twilio's limits, a benchmark).
            per_second=per_second or None,
        )

    def send(self, *, to: str, body: str, subject: str = "") -> SentMessage:
        # The subject has no place in an SMS: every segment costs money, so it is not prepended.
        if self.per_second:
            wait = reserve_send_slot(self.from_number, per_second=self.per_second)
            if wait > 0:
                time.sleep(wait)
        try:
            message = self.client.messages.create(
                to=to, from_=self.from_number, body=body, status_callback=self.status_callback or None
            )
        except TwilioRestException as exc:
            raise twilio_error(status=exc.status, code=exc.code, message=exc.msg) from exc
        except TwilioServiceException as exc:
            # The SDK raises this for answers in the RFC 9457 "problem details" shape.
            raise twilio_error(status=exc.status, code=exc.code, message=exc.detail or exc.title) from exc
        except requests.ConnectTimeout as exc:
            # Before ReadTimeout and ConnectionError: it is both, and nothing reached Twilio.
            raise DeliveryError(
                f"Twilio did not accept a connection: {exc}", permanent=False, code="connect-timeout"
            ) from exc
        except requests.Timeout as exc:
            # The request went out: Twilio may have accepted it. The caller decides how to retry that.
            raise DeliveryError(
                f"Twilio did not answer in time (the message may have been accepted): {exc}",
                permanent=False,
                code="read-timeout",
            ) from exc
        except requests.ConnectionError as exc:
            raise DeliveryError(f"cannot reach Twilio: {exc}", permanent=False, code="connection-error") from exc
        except (requests.RequestException, TwilioException) as exc:
            # A broken answer (truncated body, bad encoding): the provider's trouble, worth another try.
            raise DeliveryError(f"Twilio request failed: {exc!r}", permanent=False, code="request-error") from exc
        return SentMessage(provider_id=message.sid)

    def find_sent(self, *, to: str, body_start: str, since: datetime) -> str | None:
        # Twilio filters DateSent by day only; the exact time and the body are checked here.
        since = since - timedelta(minutes=1)
        try:
            messages = self.client.messages.list(to=to, from_=self.from_number, date_sent_after=since, limit=50)
        except (TwilioException, requests.RequestException) as exc:
            raise DeliveryError(f"cannot ask Twilio what was sent: {exc}", permanent=False, code="lookup") from exc
        for message in messages:
            created = message.date_created
            if (message.body or "").startswith(body_start) and (created is None or created >= since):
                return message.sid
        return None


class LocalSmsSink(Channel):
    """Where SMS go when Twilio is not configured: a table the admin shows, so `make run` works offline."""

    name = "sms"

    def __init__(self, *, sender: str = "") -> None:
        self.sender = sender

    def send(self, *, to: str, body: str, subject: str = "") -> SentMessage:
        # Imported here, so that importing the channels never needs the app registry to be ready.
        from alerts.models import SmsSinkMessage

        record = SmsSinkMessage.objects.create(to=to, sender=self.sender, body=body)
        logger.info("SMS to %s went to the local sink (#%s): Twilio is not configured", to, record.pk)
        return SentMessage(provider_id=f"sink-{record.pk}", via_sink=True, note=SINK_NOTE)
