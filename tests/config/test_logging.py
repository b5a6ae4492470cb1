"""What a worker logs in normal use: one INFO line per delivery, nothing alarming."""

from __future__ import annotations

import re

import pytest

from alerts import services
from scheduler.models import Job
from tests.alerts.conftest import TWILIO_FROM_NUMBER, fake_twilio  # noqa: F401  (a fixture)
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.conftest import wait_until


@pytest.fixture
def worker_log(worker_process, fake_twilio, tmp_path):  # noqa: F811
    """A real worker process, delivering SMS to the fake Twilio; its log, read when asked."""
    worker_process(
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
        TWILIO_AUTH_TOKEN=fake_twilio.auth_token,
        TWILIO_FROM_NUMBER=TWILIO_FROM_NUMBER,
        TWILIO_API_BASE_URL=fake_twilio.url,
        SMS_PER_SECOND_PER_NUMBER="0",
    )
    return lambda: (tmp_path / "worker-0.log").read_text()


def test_a_delivery_logs_one_info_line_and_no_provider_chatter(worker_log, fake_twilio):  # noqa: F811
    alert = AlertFactory(recipients=[ContactFactory()])
    services.alert_send_now(alert=alert)
    job = Job.objects.get()
    job.wait(timeout=60)
    assert job.successful(), job.errors
    assert len(fake_twilio.messages) == 1

    # Celery logs the task's end after the body returns, and the body's last step (the alert's
    # completion) comes after the job's outcome is committed: the line may follow the state by a moment.
    wait_until(lambda: job.celery_task_id in worker_log(), what="the worker to log the task's end")
    log = worker_log()
    assert "No hostname was supplied" not in log
    assert "twilio" not in log.lower(), "the SDK's request and header lines"
    about_the_delivery = [line for line in log.splitlines() if job.celery_task_id in line]
    assert len(about_the_delivery) == 1 and " INFO " in about_the_delivery[0], about_the_delivery
    assert not re.search(r" (WARNING|ERROR|CRITICAL) ", log), log
