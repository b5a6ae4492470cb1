"""The plain Celery way to send an SMS, as a user of Celery would write it: a task that calls the Twilio SDK
and stores its result with django-celery-results (``bench.settings``). No job, no delivery row, no claim.

The one concession to the benchmark: the SDK's client is pointed at the fake with the project's
``BaseUrlHttpClient`` (a URL rewrite and nothing else), one client per process as a module-level client
would be.
"""

from __future__ import annotations

import functools

from celery import shared_task
from django.conf import settings
from twilio.rest import Client


@functools.lru_cache(maxsize=1)
def _client() -> Client:
    from alerts.channels.sms import BaseUrlHttpClient

    http_client = BaseUrlHttpClient(settings.TWILIO_API_BASE_URL, timeout=settings.TWILIO_HTTP_TIMEOUT)
    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client)


@shared_task(name="bench.plain_sms", ignore_result=False)
def plain_sms(to: str, body: str) -> dict[str, str]:
    message = _client().messages.create(to=to, from_=settings.TWILIO_FROM_NUMBER, body=body)
    return {"sid": message.sid, "status": message.status}
