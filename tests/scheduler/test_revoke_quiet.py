"""Revoking costs no warning: a worker without a result backend does not try to mark revokes there."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from scheduler.models import EventKind
from scheduler.recovery import jobs_sweep
from scheduler.services import job_cancel
from tests.conftest import purge_queues, wait_until
from tests.testapp.tasks import echo

pytestmark = pytest.mark.django_db(transaction=True)

WARNING = "as revoked in backend"


def test_a_cancel_and_a_republish_log_no_backend_warning(worker_process, tmp_path, caplog, settings):
    caplog.set_level(logging.INFO)
    purge_queues()
    lost = echo.enqueue("lost in a purge")
    purge_queues()
    worker_process()
    log = tmp_path / "worker-0.log"
    wait_until(lambda: "ready." in log.read_text(), timeout=60, what="the worker to start")

    held = echo.enqueue_with(args=["held"], eta=timezone.now() + timedelta(seconds=5))
    wait_until(lambda: held.events.filter(kind=EventKind.RECEIVED).exists(), what="the worker to hold the message")
    assert job_cancel(job_id=held.pk)
    wait_until(
        lambda: "Tasks flagged as revoked" in log.read_text(), timeout=60, what="the worker to handle the revoke"
    )

    with time_machine.travel(timezone.now() + settings.JOB_UNCLAIMED_GRACE + timedelta(seconds=1)):
        assert jobs_sweep().republished == 1
    lost.wait(timeout=60)
    assert lost.successful()
    wait_until(
        lambda: log.read_text().count("Tasks flagged as revoked") >= 2, timeout=60, what="both revokes to be handled"
    )

    assert WARNING not in log.read_text()
    assert not [r for r in caplog.records if WARNING in r.getMessage()]
