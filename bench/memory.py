"""Figure 3, far-future memory: what alerts scheduled days ahead cost the worker and the broker, against
bare Celery ``apply_async(eta=+2 days)`` of the same count, which Celery holds in the worker's memory.

A fresh worker is started and warmed up (a few tracked alerts and no-ops, the dispatcher once), so that
what it imports and caches on first use is not counted. Then:

- tracked: one-off alerts due in 2 to 3 days, enqueued through ``alerts.planner.occurrence_enqueue``
  (in parallel processes: it is the setting of the scene, not the measure); their jobs wait in the
  database. The dispatcher then runs three times in the worker (``scheduler.dispatch_due_jobs``) and must
  publish none of them.
- bare: ``bench.noop.apply_async(eta=now + 2 days)``, as many; the benchmark waits until the broker's
  queue is empty (every message is in the worker's hands) and the worker's memory settles.

Worker memory is the RSS of its whole process tree (consumer and pool, from /proc); broker memory is
RabbitMQ's Erlang VM total (``rabbitmqctl status``) or Redis's ``used_memory``. At the end the worker is
killed and the queues purged, which drops the held messages.
"""

from __future__ import annotations

import time
from datetime import timedelta

from bench import data, throughput
from bench.progress import Progress, note, show, verdict
from bench.stack import MB, BenchError

TITLE = "Far-future memory"


def _growth(before: int | None, after: int | None) -> float | None:
    return None if before is None or after is None else round((after - before) / MB, 1)


def _dispatch_in_worker(ctx, times: int = 3) -> None:
    from config.celery import app

    queue = ctx.stack.queues["maintenance"]
    for _ in range(times):
        app.send_task("scheduler.dispatch_due_jobs", queue=queue, routing_key=queue)
    deadline = time.monotonic() + 60
    while ctx.stack.queue_depth("maintenance") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)


def _tracked(ctx, count: int) -> dict[str, object]:
    from django.conf import settings
    from django.utils import timezone

    from scheduler.models import Job, State

    stack = ctx.stack
    start = timezone.now() + timedelta(days=2)
    step = timedelta(days=1) / count
    ids = data.alerts(
        count,
        name=lambda i: f"bench far future {i}",
        message=lambda i: "Far-future test {{ alert.name }}",
        contact_ids=ctx.contact_ids,
        send_at=lambda i: start + i * step,
        label="create alerts",
    )
    worker_before, broker_before = stack.settled_rss(ctx.worker), stack.broker_memory()
    seconds = data.run_parallel(data.enqueue_occurrences, ids, label="enqueue (days ahead)", chunk=250)
    _dispatch_in_worker(ctx)
    published = Job.objects.filter(
        state=State.QUEUED, eta__gt=timezone.now() + settings.JOB_ETA_HORIZON, published_at__isnull=False
    ).count()
    if published:
        note(f"  warning: {published} far-future jobs were published to the broker")
    worker_after, broker_after = stack.settled_rss(ctx.worker), stack.broker_memory()
    return {
        "worker": _growth(worker_before, worker_after),
        "broker": _growth(broker_before, broker_after),
        "published": published,
        "enqueue_per_s": round(count / seconds, 1),
        "rss_mb": round(worker_after / MB, 1),
    }


def _bare(ctx, count: int) -> dict[str, object]:
    from django.utils import timezone

    from bench.bare import noop

    stack = ctx.stack
    queue = stack.queues["default"]
    worker_before, broker_before = stack.settled_rss(ctx.worker), stack.broker_memory()
    eta = timezone.now() + timedelta(days=2)
    with Progress("bare: apply_async(eta=+2 days)", count) as bar:
        for i in range(count):
            noop.apply_async(eta=eta, queue=queue, routing_key=queue)
            if i % 1000 == 0:
                bar.update(i)
        bar.update(count)
    deadline = time.monotonic() + 120 + count / 500
    with Progress("bare: taken by the worker", count) as bar:
        while True:
            depth = stack.queue_depth("default")
            bar.update(count - depth)
            if depth == 0:
                break
            if time.monotonic() > deadline or not ctx.worker.alive():
                raise BenchError(f"the worker took only {count - depth} of {count} ETA messages")
            time.sleep(0.5)
    worker_after = stack.settled_rss(ctx.worker, seconds=5)
    broker_after = stack.broker_memory()
    return {"worker": _growth(worker_before, worker_after), "broker": _growth(broker_before, broker_after)}


def run(ctx) -> dict[str, object]:
    stack = ctx.stack
    if ctx.worker is not None:
        stack.stop(ctx.worker)
    stack.purge_queues()  # whatever earlier figures left queued is not this worker's business
    ctx.worker = stack.start_worker(concurrency=ctx.concurrency)
    throughput.tracked(ctx, 20, label="warm-up: tracked", count_db=False)
    throughput.bare(ctx, 200, label="warm-up: bare")
    _dispatch_in_worker(ctx, times=1)
    tracked = _tracked(ctx, ctx.scale["far_n"])
    # The baseline gets a worker of its own, with the QoS step: a stock worker on RabbitMQ takes ETA
    # messages at about two per second when idle, and would take hours to hold them all.
    stack.stop(ctx.worker)
    ctx.worker = stack.start_worker(concurrency=ctx.concurrency, qos_fix=True)
    throughput.bare(ctx, 200, label="warm-up: bare")
    bare = _bare(ctx, ctx.scale["bare_eta_n"])
    # The held ETA messages go back to the queue when the worker dies; the purge drops them.
    stack.stop(ctx.worker, graceful=False)
    ctx.worker = None
    stack.purge_queues()
    stack.forget_unacked()
    return {
        "far_future_worker_rss_growth_mb": tracked["worker"],
        "bare_eta_worker_rss_growth_mb": bare["worker"],
        "far_future_broker_growth_mb": tracked["broker"],
        "bare_eta_broker_growth_mb": bare["broker"],
        "far_future_alerts": ctx.scale["far_n"],
        "bare_eta_tasks": ctx.scale["bare_eta_n"],
        "far_future_published": tracked["published"],
        "far_future_enqueue_per_s": tracked["enqueue_per_s"],
        "far_future_worker_rss_mb": tracked["rss_mb"],
    }


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    growth = keys.get("far_future_worker_rss_growth_mb")
    return [
        (f"3 far future: {keys.get('far_future_alerts')} alerts, worker growth", show(growth, " MB"), "<= 5 MB",
         verdict(growth, lambda v: v <= 5)),
        ("  broker growth", show(keys.get("far_future_broker_growth_mb"), " MB"), "", ""),
        ("  published to the broker", show(keys.get("far_future_published")), "0",
         verdict(keys.get("far_future_published"), lambda v: v == 0)),
        (f"  bare eta=+2d: {keys.get('bare_eta_tasks')} tasks, worker growth",
         show(keys.get("bare_eta_worker_rss_growth_mb"), " MB"), "", ""),
        ("  bare eta=+2d: broker growth", show(keys.get("bare_eta_broker_growth_mb"), " MB"), "", ""),
    ]  # fmt: skip
