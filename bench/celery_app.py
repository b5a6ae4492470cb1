"""The Celery app the benchmark's workers load (``celery -A bench.celery_app worker``).

The project's own app, plus the baselines' tasks (``bench.bare``, ``bench.plain``, ``bench.floor``): nothing
else differs from ``-A config`` (but the settings, ``bench.settings``), unless the worker is started with
``BENCH_QOS_BEFORE_POLL=1``. Then a consumer step applies the prefetch increments of ETA messages before
the event loop polls again, instead of after the poll returns: without it, an idle worker on RabbitMQ
takes ETA messages at about two per second (each increment waits for a poll timeout, up to 2 s; see
docs/benchmarks.md). The benchmark uses it for the bare ``eta=+2 days`` baseline always, and for every
worker with ``--qos-fix`` (to measure the change it recommends).
"""

from __future__ import annotations

import os

from celery import bootsteps

import bench.bare  # noqa: F401  (registers bench.noop, bench.sms)
import bench.floor  # noqa: F401  (registers bench.floor_sms)
import bench.plain  # noqa: F401  (registers bench.plain_sms)
from config.celery import app


class QosBeforePoll(bootsteps.StartStopStep):
    """Send a changed prefetch count (basic.qos) before the hub blocks in poll, not after."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer) -> None:
        hub = consumer.controller.hub
        if hub is None:  # not the event loop (a threads or solo pool): nothing to fix
            return

        def update_qos_before_poll() -> None:
            qos = consumer.qos
            if qos is not None and qos.prev != qos.value:
                qos.update()

        hub.on_tick.add(update_qos_before_poll)


if os.environ.get("BENCH_QOS_BEFORE_POLL") == "1":
    app.steps["consumer"].add(QosBeforePoll)

__all__ = ["app"]
