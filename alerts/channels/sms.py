"""SMS through Twilio's official SDK, or into a local sink when Twilio is not configured."""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from alerts.channels.base import PROVIDER_CLOCK_MARGIN, DeliveryChannel, DeliveryError, Envelope, SentMessage, Transport
from alerts.channels.ratelimit import reserve_send_slot, sms_segments

logger = logging.getLogger(__name__)

# Where Twilio posts the message's status changes (queued, sent, delivered, undelivered, failed).
STATUS_CALLBACK_PATH = "/alerts/twilio/status"
# Twilio's codes for a recipient that no retry will fix: 21211 the 'To' number is not a valid phone
# number, 21614 the 'To' number is not a mobile number (cannot receive SMS), 21610 the recipient replied
# STOP (unsubscribed until it sends START).
PERMANENT_TWILIO_CODES = frozenset({21211, 21614, 21610})
# Trouble that passes in seconds: 20429 too many requests (also HTTP 429), 21611 the sender's queue is
# full (Twilio queues a sender's messages beyond its rate, up to a limit), 30001 queue overflow. Retried
# after a short jittered backoff, not after the alert's retry delay (an hour) meant for outages.
SHORT_BACKOFF_TWILIO_CODES = frozenset({20429, 21611, 30001})
SHORT_BACKOFF_SECONDS = (5.0, 30.0)
# One page of Twilio's largest size: a lookup (after a timeout or a dead worker) reads every message to the
# number since the day it looks from, newest first, and the messages sent after the attempt it looks for no
# longer match but still fill the page.
FIND_SENT_PAGE = 1000
# Where the SDK sends messages; with TWILIO_API_BASE_URL, its scheme and host are replaced.
TWILIO_API_URL = "https://api.twilio.com/2010-04-01/Accounts"
SINK_NOTE = "Twilio is not configured: the SMS went to the local sink, not to a phone"


def twilio_configured() -> bool:
    """Whether every setting a real SMS needs is there (the system check warns about a partial set)."""
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER)


def sms_channel() -> Transport:
    """The SMS channel the settings ask for: Twilio when configured, otherwise the local sink."""
    if twilio_configured():
        return _twilio_for(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_FROM_NUMBER,
            settings.TWILIO_API_BASE_URL,
            settings.PUBLIC_BASE_URL,
            float(getattr(settings, "TWILIO_HTTP_TIMEOUT", 10)),
            float(getattr(settings, "SMS_PER_SECOND_PER_NUMBER", 0.0)),
            int(getattr(settings, "SMS_VALIDITY_PERIOD_SECONDS", 0)),
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
        self.base = urlsplit(base_url) if base_url else None

    def rebase(self, url: str) -> str:
        if self.base is None:
            return url
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


class ServiceHttpClient(BaseUrlHttpClient):
    """The transport's client: the environment's proxy and CA settings are read once, when it is made.

    ``requests`` reads them again for every request (``trust_env``): every proxy variable of the process
    environment scanned, a tenth of a delivery's CPU in the worker. A worker's environment does not change
    while it runs, so the settings they give for Twilio's address are kept on the session instead:
    ``HTTPS_PROXY``, ``NO_PROXY`` and ``REQUESTS_CA_BUNDLE`` work as before.
    """

    def __init__(self, base_url: str = "", *, timeout: float | None = None) -> None:
        super().__init__(base_url, timeout=timeout)
        session = self.session
        found = session.merge_environment_settings(self.rebase(TWILIO_API_URL), self.proxy, None, None, None)
        self.proxy = found["proxies"]
        session.verify, session.cert = found["verify"], found["cert"]
        session.trust_env = False


def twilio_error(*, status: int, code: int | None, message: str) -> DeliveryError:
    """Map an error answer of Twilio's API to a DeliveryError that says whether a retry can help."""
    retry_after = None
    if code in PERMANENT_TWILIO_CODES:
        permanent = True
    elif code in SHORT_BACKOFF_TWILIO_CODES or status == 429:
        # Jittered, so that the senders that met a full queue together do not come back together.
        permanent, retry_after = False, random.uniform(*SHORT_BACKOFF_SECONDS)
    elif status >= 500 or status == 408:
        # 5xx: Twilio's trouble. 408: a proxy timed out, like our own timeout.
        permanent = False
    else:
        # Any other 4xx (wrong credentials included): the same request will get the same answer.
        permanent = True
    return DeliveryError(
        f"Twilio error {code} (HTTP {status}): {message}", permanent=permanent, code=code or status,
        retry_after=retry_after,
    )  # fmt: skip


_clients = threading.local()


def _twilio_for(*settings_values: object) -> TwilioSms:
    """One client (and its keep-alive HTTP session) per thread and configuration, not one per message.

    Per thread, not per process: the sms worker runs deliveries in 32 threads, and a shared
    ``requests`` session keeps only 10 connections (urllib3's pool), opening and dropping a new one for
    every request beyond them. The arguments are the settings it is built from, so a change of settings
    gets a new client.
    """
    cached = getattr(_clients, "by_settings", None)
    if cached is None or cached[0] != settings_values:
        cached = _clients.by_settings = (settings_values, TwilioSms.from_settings())
    return cached[1]


class TwilioSms(Transport):
    """SMS through Twilio's Messages API, optionally at most ``per_second`` segments a second per sender.

    ``validity_period`` (seconds; 0 or ``None``: Twilio's own, 10 hours): a message still in Twilio's
    queue that long after it was accepted expires (status ``failed``, error 30036) instead of arriving
    late; a reminder hours late is worse than none.
    """

    name = "sms"
    can_find_sent = True

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        status_callback: str = "",
        api_base_url: str = "",
        timeout: float = 10.0,
        per_second: float | None = None,
        validity_period: int | None = None,
    ) -> None:
        self.from_number = from_number
        self.status_callback = status_callback
        self.per_second = per_second
        self.validity_period = validity_period or None
        self.timeout = timedelta(seconds=timeout)
        # Without a timeout, requests waits forever on a provider that accepted the connection and then
        # hung, and so would the worker; with one, the hang becomes a temporary error the engine retries.
        http_client = ServiceHttpClient(api_base_url, timeout=timeout)
        self.client = Client(account_sid, auth_token, http_client=http_client)

    @classmethod
    def from_settings(cls) -> TwilioSms:
        per_second = float(getattr(settings, "SMS_PER_SECOND_PER_NUMBER", 0.0))
        return cls(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=settings.TWILIO_FROM_NUMBER,
            status_callback=f"{settings.PUBLIC_BASE_URL}{STATUS_CALLBACK_PATH}",
            api_base_url=settings.TWILIO_API_BASE_URL,
            timeout=float(getattr(settings, "TWILIO_HTTP_TIMEOUT", 10)),
            # 0 (the default) turns the limit off: Twilio queues above a sender's rate itself.
            per_second=per_second or None,
            validity_period=int(getattr(settings, "SMS_VALIDITY_PERIOD_SECONDS", 0)),
        )

    def reserve(self, *, body: str) -> float:
        if not self.per_second:
            return 0.0
        return reserve_send_slot(self.from_number, per_second=self.per_second, segments=sms_segments(body))

    def send(self, *, to: str, body: str, subject: str = "", envelope: Envelope | None = None) -> SentMessage:
        # The subject has no place in an SMS: every segment costs money, so it is not prepended.
        try:
            message = self.client.messages.create(
                to=to,
                from_=self.from_number,
                body=body,
                status_callback=self.status_callback or None,
                validity_period=self.validity_period or values.unset,
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

    def find_sent(self, *, to: str, body_start: str, attempt_started: datetime) -> list[str]:
        # The attempt asked Twilio first when an earlier one got no answer, then sent: two requests, each given
        # up after the connect and then the read timeout (requests applies ``timeout`` to each).
        earliest = attempt_started - PROVIDER_CLOCK_MARGIN
        latest = attempt_started + 2 * 2 * self.timeout + PROVIDER_CLOCK_MARGIN
        try:
            # Twilio filters DateSent by day only; the exact time and the body are checked here.
            messages = self.client.messages.list(
                to=to, from_=self.from_number, date_sent_after=earliest, limit=FIND_SENT_PAGE
            )
        except (TwilioException, requests.RequestException) as exc:
            raise DeliveryError(f"cannot ask Twilio what was sent: {exc}", permanent=False, code="lookup") from exc
        return [
            message.sid
            for message in messages
            if (message.body or "").startswith(body_start)
            and message.date_created is not None
            and earliest <= message.date_created <= latest
        ]


class LocalSmsSink(Transport):
    """Where SMS go when Twilio is not configured: a table the admin shows, so `make run` works offline."""

    name = "sms"
    can_find_sent = True

    def __init__(self, *, sender: str = "") -> None:
        self.sender = sender

    def find_sent(self, *, to: str, body_start: str, attempt_started: datetime) -> list[str]:
        from alerts.models import SmsSinkMessage

        # The sink's send is one INSERT with no timeout: the attempt's window is the margin either side.
        window = (attempt_started - PROVIDER_CLOCK_MARGIN, attempt_started + PROVIDER_CLOCK_MARGIN)
        found = SmsSinkMessage.objects.filter(to=to, body__startswith=body_start, created_at__range=window)
        return [f"sink-{pk}" for pk in found.values_list("pk", flat=True)]

    def send(self, *, to: str, body: str, subject: str = "", envelope: Envelope | None = None) -> SentMessage:
        # Imported here, so that importing the channels never needs the app registry to be ready.
        from alerts.models import SmsSinkMessage

        record = SmsSinkMessage.objects.create(to=to, sender=self.sender, body=body)
        logger.info("SMS to %s went to the local sink (#%s): Twilio is not configured", to, record.pk)
        return SentMessage(provider_id=f"sink-{record.pk}", via_sink=True, note=SINK_NOTE)


CHANNEL = DeliveryChannel(name="sms", contact_field="phone", queue="sms", transport=sms_channel)
