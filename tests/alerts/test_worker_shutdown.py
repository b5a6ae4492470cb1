"""The shipped threads worker (``runstack.worker_commands``' ``worker-io``) stopped for a deploy: SIGTERM is
a warm shutdown that finishes and records the delivery in flight, as the prefork pool does.

In a module of its own: no in-process worker may consume the queues while the real one runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest
from django.conf import settings

from alerts import services
from alerts.models import Delivery, DeliveryState
from config.management.commands.runstack import worker_commands
from scheduler.models import Job, State
from tests.alerts.factories import AlertFactory
from tests.alerts.test_interrupted_delivery import twilio_env
from tests.conftest import BASE_DIR, kill_group, live_database_url, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_warm_shutdown_of_the_shipped_threads_worker_lets_a_running_delivery_finish(
    broker, transactional_db, fake_twilio, tmp_path
):
    """SIGTERM (a deploy) while Twilio takes its time: the delivery in flight is finished and recorded
    before the worker exits, as the prefork pool does; nothing is left for the sweep."""
    fake_twilio.latency = 2.0
    argv = worker_commands(queues=settings.JOB_BROKER_QUEUES, state_dir=tmp_path)["worker-io"]
    argv = [arg for arg in argv if not arg.startswith("--hostname=")]
    argv += [f"--hostname=io-{uuid.uuid4().hex[:8]}@%h", "--without-mingle", "--without-gossip"]
    env = {
        **os.environ, **twilio_env(fake_twilio), "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": live_database_url(), "CELERY_BROKER_URL": broker.url,
        "EMBEDDED_BROKER_DIR": str(broker.embedded_root),
    }  # fmt: skip
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(argv, env=env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: " ready." in (tmp_path / "worker.log").read_text(), timeout=60, what="the worker")
        services.alert_send_now(alert=AlertFactory())
        wait_until(lambda: Delivery.objects.filter(state=DeliveryState.SENDING).exists(), timeout=60,
                   what="the delivery to be in flight")  # fmt: skip
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        kill_group(worker)
    job = Job.objects.get()
    assert job.state == State.SUCCEEDED, (job.errors, (tmp_path / "worker.log").read_text()[-3000:])
    [message] = fake_twilio.messages
    assert Delivery.objects.get().provider_id == message.sid
