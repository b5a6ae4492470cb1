"""Fixtures for the alerts app: the fake Twilio API and the fake SMTP server, with settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model

from tests.fakes.smtp import FakeSmtp
from tests.fakes.twilio_server import FakeTwilio

TWILIO_FROM_NUMBER = "+15005550006"


@pytest.fixture
def fake_twilio(settings) -> Iterator[FakeTwilio]:
    """A Twilio Messages API on a local port, with the Twilio settings pointing at it."""
    with FakeTwilio(account_sid="AC" + "1" * 32, auth_token="fake-twilio-token") as fake:
        settings.TWILIO_ACCOUNT_SID = fake.account_sid
        settings.TWILIO_AUTH_TOKEN = fake.auth_token
        settings.TWILIO_FROM_NUMBER = TWILIO_FROM_NUMBER
        settings.TWILIO_API_BASE_URL = fake.url
        yield fake


@pytest.fixture
def fake_smtp(settings) -> Iterator[FakeSmtp]:
    """An SMTP server on a local port, with Django's SMTP backend pointing at it."""
    with FakeSmtp() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = smtp.host
        settings.EMAIL_PORT = smtp.port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_TIMEOUT = 5
        yield smtp


@pytest.fixture
def admin_client(client):
    """A client logged in as a superuser."""
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-only"))
    return client
