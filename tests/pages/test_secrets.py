"""No job page shows a configured secret, wherever a job's data carries it."""

from __future__ import annotations

import pytest

from scheduler.models import EventKind, JobEvent, State
from scheduler.templatetags.scheduler_tags import MASK, redact_value

pytestmark = pytest.mark.django_db

SECRETS = {
    "SECRET_KEY": "django-insecure-S3cr3t-k3y-for-the-test",
    "TWILIO_AUTH_TOKEN": "twilio-auth-token-0123456789abcdef",
    "EMAIL_HOST_PASSWORD": "smtp-p4ssw0rd-for-the-test",
}


@pytest.fixture
def secret_client(client, settings, staff):
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    client.force_login(staff)  # after the new SECRET_KEY, which signs the session
    return client


@pytest.fixture
def leaky_job(make_job):
    token, password, key = SECRETS["TWILIO_AUTH_TOKEN"], SECRETS["EMAIL_HOST_PASSWORD"], SECRETS["SECRET_KEY"]
    job = make_job(
        State.RUNNING,
        label=f"Alert with {token} in its name",
        args=[f"https://AC123:{token}@api.twilio.com/", {"nested": [password]}],
        kwargs={"smtp_password": "not-a-configured-secret-but-named-like-one", "note": key},
        status_message=f"login failed for {password}",
        errors=[
            {
                "attempt": 1,
                "type": "smtplib.SMTPAuthenticationError",
                "message": f"(535, b'bad credentials {password}')",
                "traceback": f"Traceback...\n  password = {password!r}\n  token = {token!r}\nError: {key}",
                "retryable": True,
                "at": "2030-06-01T12:00:00+00:00",
            }
        ],
        result={"echo": token},
        unique_key=f"alert:{token}",
        worker=f"celery@{password}",
    )
    JobEvent.objects.create(job=job, kind=EventKind.RETRIED, message=f"attempt 1 failed: {token}", hostname=token)
    return job


def assert_no_secret(html: str) -> None:
    for name, value in SECRETS.items():
        assert value not in html, f"{name} leaked"
    assert "not-a-configured-secret-but-named-like-one" not in html


@pytest.mark.parametrize(
    "url", ["/jobs/", "/jobs/rows/", "/jobs/{pk}/", "/jobs/{pk}/live/", "/jobs/{pk}/cancel/", "/jobs/?q=alert"]
)
def test_no_page_shows_a_secret_the_job_carries(secret_client, leaky_job, url):
    response = secret_client.get(url.format(pk=leaky_job.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert_no_secret(html)
    assert MASK in html


def test_the_bulk_confirmation_shows_no_secret(secret_client, leaky_job):
    response = secret_client.post("/jobs/bulk/", {"action": "cancel", "ids": [leaky_job.pk]})
    html = response.content.decode()
    assert_no_secret(html)
    assert f"Alert with {MASK} in its name" in html


def test_the_masked_page_still_shows_everything_else(secret_client, leaky_job):
    html = secret_client.get(f"/jobs/{leaky_job.pk}/").content.decode()
    assert f"https://AC123:{MASK}@api.twilio.com/" in html
    assert f"login failed for {MASK}" in html
    assert "smtplib.SMTPAuthenticationError" in html


def test_values_under_keys_named_like_secrets_are_masked_at_any_depth():
    value = {"Authorization": "Bearer abc", "api_key": "k", "items": [{"password": "p", "name": "n"}], "token": None}
    assert redact_value(value) == {
        "Authorization": MASK,
        "api_key": MASK,
        "items": [{"password": MASK, "name": "n"}],
        "token": None,
    }


def test_short_or_empty_settings_mask_nothing(settings):
    settings.TWILIO_AUTH_TOKEN = ""
    settings.EMAIL_HOST_PASSWORD = "abc"
    assert redact_value(["abc", "", "plain text"]) == ["abc", "", "plain text"]
