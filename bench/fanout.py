"""Figure 1c, fan-out: one alert to many people (a 09:00 reminder to a crowd), provider answering late.

Sent now, with the provider answering each message ``--provider-latency-ms`` late, consumed by the
workers the service ships (started by the provider-latency figure). Two ways, in the same run:

- shared out: as the service plans it, one delivery job per share of ``ALERT_RECIPIENTS_PER_JOB``
  recipients (``alerts/fanout.py``), ``fanout_n`` recipients;
- one job: the whole occurrence in one job on the channel (how it was planned before the fan-out), with
  ``fanout_one_job_n`` recipients (fewer: at a quarter of a second each, the rate shows in seconds).

Rate: recipients / (last SMS received - send now); CPU per delivery by part as in the throughput figure.
"""

from __future__ import annotations

import time
import uuid

from bench.progress import show, verdict
from bench.stats import rate


def one_alert(ctx, recipients: int, *, per_job: int | None, label: str) -> dict[str, object]:
    """Send one alert to ``recipients`` new contacts now; ``per_job``: the share size (None: as configured)."""
    from django.test.utils import override_settings

    from alerts.models import Alert
    from alerts.services import alert_send_now
    from bench import data
    from bench.throughput import _wait, cpu_per_item

    alert = Alert.objects.get(pk=data.alert_to_many(recipients, name=f"bench fan-out {uuid.uuid4().hex[:8]}"))
    offset = ctx.stack.fake_count()
    cpu = ctx.stack.cpu_times()
    started = time.time()
    with override_settings(**({"ALERT_RECIPIENTS_PER_JOB": per_job} if per_job else {})):
        alert_send_now(alert=alert)
    _wait(f"{label}: deliver", recipients, lambda: ctx.stack.fake_count() - offset, timeout=120 + recipients / 2)
    last = max(m["received_at"] for m in ctx.stack.fake_messages(offset))
    return {"per_s": rate(recipients, last - started), "seconds": last - started,
            "cpu_ms": cpu_per_item(cpu, ctx.stack.cpu_times(), recipients)}  # fmt: skip


def run(ctx, latency_ms: float) -> dict[str, object]:
    """Both ways, on the shipped workers already running with the provider at ``latency_ms``."""
    from django.conf import settings

    shared = one_alert(ctx, ctx.scale["fanout_n"], per_job=None, label=f"fan-out, {latency_ms:g} ms provider")
    whole_n = ctx.scale["fanout_one_job_n"]
    whole = one_alert(ctx, whole_n, per_job=whole_n, label=f"one job, {latency_ms:g} ms provider")
    return {
        "fanout_recipients": ctx.scale["fanout_n"],
        "fanout_recipients_per_job": settings.ALERT_RECIPIENTS_PER_JOB,
        "fanout_sms_per_s": round(shared["per_s"], 1),
        "fanout_seconds": round(shared["seconds"], 1),
        "fanout_cpu_ms_per_delivery": shared["cpu_ms"],
        "fanout_one_job_sms_per_s": round(whole["per_s"], 1),
    }


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    value = keys.get("fanout_sms_per_s")
    cpu = keys.get("fanout_cpu_ms_per_delivery") or {}
    return [
        (f"1c one alert to {keys.get('fanout_recipients')} people, shares of {keys.get('fanout_recipients_per_job')}",
         f"{show(value, '/s')} (last after {show(keys.get('fanout_seconds'), ' s')})", ">= 100",
         verdict(value, lambda v: v >= 100)),
        ("  the same alert in one job (as planned before)", show(keys.get("fanout_one_job_sms_per_s"), "/s"), "", ""),
        ("  CPU per delivery in the fan-out", show(cpu.get("total"), " ms"), "", ""),
    ]  # fmt: skip
