"""Loaded by a worker started with ``tests.alerts.crash_settings``: SIGKILL around the first Twilio call."""

from __future__ import annotations

import os
import signal

from alerts.channels.sms import TwilioSms

_send = TwilioSms.send


def _die() -> None:
    # The whole group: the pool process and the worker's main process, as when a machine loses power.
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _send_then_die(self, **kwargs):
    if os.environ.get("DELIVERY_CRASH") == "before-send":
        _die()
    sent = _send(self, **kwargs)
    _die()
    return sent


TwilioSms.send = _send_then_die
