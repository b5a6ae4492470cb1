"""The baselines: Celery tasks with results off and nothing of the job engine.

They run with the project's Celery configuration (same broker, queues, ``acks_late``, prefetch of one
per process, task events), so the difference to a tracked job is what the job engine and the alert add.

- ``bench.noop`` does nothing: the baseline of the issue.
- ``bench.sms`` sends one SMS through the project's own channel (``alerts.channels.sms.sms_channel()``,
  the Twilio SDK, to the local fake) and writes nothing: the work a tracked delivery does besides
  tracking, so that the ratio to it shows what tracking costs.

The throughput figure ends each run with one message that carries ``mark``: the task writes the time it
ran to that file, the only extra I/O of a baseline, once per run.
"""

from __future__ import annotations

import os
import time

from celery import shared_task


def _write_mark(mark: str) -> None:
    partial = f"{mark}.part"
    with open(partial, "w") as handle:
        handle.write(repr(time.time()))
    os.replace(partial, mark)  # the reader never sees a half-written time


@shared_task(name="bench.noop", ignore_result=True)
def noop(mark: str | None = None) -> None:
    if mark:
        _write_mark(mark)


@shared_task(name="bench.sms", ignore_result=True)
def sms(to: str, body: str, mark: str | None = None) -> None:
    from alerts.channels.sms import sms_channel

    sms_channel().send(to=to, body=body)
    if mark:
        _write_mark(mark)
