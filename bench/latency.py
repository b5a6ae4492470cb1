"""Figure 1, continued: delivery with a provider that answers late, and the plain Celery baseline.

Provider latency: the fake Twilio answers each message ``--provider-latency-ms`` late (default 250 ms;
Twilio's API takes about 100-400 ms), each request in a thread of its own. Measured at that latency:

- bare: ``bench.sms`` (the project's SMS channel, nothing tracked) in the figure's own worker, Celery's
  default prefork pool with one process per core; rate as in the throughput figure;
- tracked: one-off alerts sent now, as in the throughput figure, but consumed by the workers the service
  ships (``runstack.worker_commands``: what `make run`, docker-compose and supervisord run), started for
  this phase in place of the figure's worker and stopped after it; figure 1c (``bench/fanout.py``, one
  alert to a crowd) runs on them too, before they stop.

Plain Celery (provider answering at once, the figure's worker): ``bench.plain_sms``, a task that sends the
SMS through the Twilio SDK and stores its result with django-celery-results; rate = ``N / (last result
stored - first publish)``.
"""

from __future__ import annotations

import time

from bench import fanout
from bench.progress import Progress, show
from bench.stats import rate, ratio

WARM_UP = 20


def plain_celery(ctx, count: int) -> float:
    """Publish ``count`` plain Celery SMS tasks (after a warm-up); return tasks per second."""
    from django.db.models import Max
    from django_celery_results.models import TaskResult

    from bench.data import PHONE
    from bench.plain import plain_sms
    from bench.throughput import _wait, cpu_per_item

    queue = ctx.stack.queues["sms"]
    stored = TaskResult.objects.count()
    for label, n in (("warm-up: plain Celery SMS", WARM_UP), ("plain Celery: SMS tasks", count)):
        since = time.time()
        cpu = ctx.stack.cpu_times()
        with Progress(f"{label}: publish", n) as bar:
            for i in range(n):
                plain_sms.apply_async(args=[PHONE.format(i % 100), f"Plain SMS {i}"], queue=queue, routing_key=queue)
                if i % 200 == 0:
                    bar.update(i)
            bar.update(n)
        _wait(f"{label}: results", n, lambda: TaskResult.objects.count() - stored, timeout=120 + n / 5)  # noqa: B023
        stored += n
    ctx.shared["plain_cpu_ms"] = cpu_per_item(cpu, ctx.stack.cpu_times(), count)
    last = TaskResult.objects.aggregate(last=Max("date_done"))["last"].timestamp()
    return rate(count, last - since)


def run(ctx, tracked) -> dict[str, object]:
    """The provider-latency figures; leaves the figure's worker stopped (the next figure starts one)."""
    from bench.throughput import bare_sms

    stack = ctx.stack
    latency_ms = ctx.args.provider_latency_ms
    stack.set_provider_latency(latency_ms)
    try:
        # Its own CPU key: the instant provider's bare SMS CPU, beside the tracked figure's, is kept.
        bare_per_s = bare_sms(ctx, ctx.scale["latency_bare_n"], label=f"bare SMS, prefork, {latency_ms:g} ms provider",
                              cpu_key="latency_bare_sms_cpu_ms")  # fmt: skip
        stack.stop(ctx.worker)
        ctx.worker = None
        workers = stack.start_shipped_workers()
        try:
            label = f"tracked, shipped workers, {latency_ms:g} ms provider"
            tracked(ctx, WARM_UP, label=f"warm-up: {label}", worker_pid=workers[0].pid, count_db=False)
            result = tracked(ctx, ctx.scale["latency_tracked_n"], label=label, profile="latency",
                             worker_pid=workers[0].pid)  # fmt: skip
            crowd = fanout.run(ctx, latency_ms)
        finally:
            for worker in workers:
                stack.stop(worker)
    finally:
        stack.set_provider_latency(0)
    return {
        **crowd,
        "provider_latency_ms": latency_ms,
        "provider_latency_jobs_per_s": round(result["per_s"], 1),
        "provider_latency_bare_prefork_per_s": round(bare_per_s, 1),
        "provider_latency_tracked_vs_bare_prefork": round(ratio(result["per_s"], bare_per_s), 2),
        "provider_latency_failed": result["failed"],
        "provider_latency_cpu_ms_per_job": result["cpu_ms"],
        "provider_latency_db_per_job": result["db_per_job"],
        "shipped_workers": [" ".join(w.popen.args[3:]) for w in workers],
    }


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    from bench.progress import verdict

    value = keys.get("provider_latency_jobs_per_s")
    ms = keys.get("provider_latency_ms")
    return [
        (f"1b provider answering in {ms} ms: tracked alert SMS (shipped workers)", show(value, "/s"), ">= 100",
         verdict(value, lambda v: v >= 100)),
        ("  bare SMS task, default prefork pool", show(keys.get("provider_latency_bare_prefork_per_s"), "/s"), "", ""),
        *fanout.rows(keys),
    ]  # fmt: skip
