"""Figure 1, throughput: alert jobs delivered per second end to end, against bare Celery no-op tasks.

Bare: ``N`` ``bench.noop`` messages published back to back by this process while the worker consumes,
then one more that carries a mark (the task writes the time it ran to a file). With a prefetch of one
per process and a FIFO queue, the marked message runs after all the others were taken, and at most
``concurrency - 1`` no-ops still run beside it (microseconds each). Rate: ``(N + 1) / (mark - first publish)``.

Bare SMS: ``M`` ``bench.sms`` messages, each sending one SMS through the project's SMS channel to the
local fake (the same SDK call as a delivery) with nothing tracked; rate: ``(M + 1) / (last SMS received -
first publish)``. Its ratio to the tracked rate is what the tracking itself costs.

Tracked: ``N`` one-off alerts with one SMS recipient each, sent with ``alerts.services.alert_send_now``
(the admin's "send now") one after the other: occurrence and job rows, publish after commit; then in the
worker the claim, the abort checks, the delivery row, the Twilio call to the local fake and the final
state. Rate: ``N / (last job final or last SMS received, whichever is later - first enqueue)``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench import data, floor, latency
from bench.procfs import MACHINE
from bench.profile import Profiler
from bench.progress import Progress, note, show, verdict
from bench.stack import BenchError
from bench.stats import rate, ratio

TITLE = "Throughput"


def _wait(what: str, total: int, done, *, timeout: float) -> None:
    """Poll ``done()`` (how many are done) until ``total``, with a progress bar; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    with Progress(what, total) as bar:
        while True:
            count = done()
            bar.update(min(count, total))
            if count >= total:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{what}: only {count} of {total} after {timeout:.0f}s")
            time.sleep(0.1)


def bare(ctx, count: int, *, label: str = "bare: no-op tasks") -> float:
    """Publish ``count`` no-ops and a marked one; return tasks per second."""
    from bench.bare import noop

    queue = ctx.stack.queues["default"]
    mark = Path(ctx.stack.tmp / f"bare-{uuid.uuid4().hex}.mark")
    cpu = ctx.stack.cpu_times()
    started = time.time()
    with Progress(f"{label}: publish", count) as bar:
        for i in range(count):
            noop.apply_async(queue=queue, routing_key=queue)
            if i % 500 == 0:
                bar.update(i)
        bar.update(count)
    noop.apply_async(kwargs={"mark": str(mark)}, queue=queue, routing_key=queue)
    _wait(f"{label}: drain", count + 1, lambda: count + 1 - ctx.stack.queue_depth("default") - (not mark.exists()),
          timeout=120 + count / 50)  # fmt: skip
    ctx.shared["bare_cpu_ms"] = cpu_per_item(cpu, ctx.stack.cpu_times(), count + 1)
    return rate(count + 1, float(mark.read_text()) - started)


def cpu_per_item(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """CPU milliseconds per item by part of the stack, largest first, with their total; and the machine's
    busy time over the same window (``machine busy``), the check of that total."""
    parts = {name: 1000 * (after.get(name, 0.0) - before.get(name, 0.0)) / count for name in after}
    machine = parts.pop(MACHINE, None)
    parts = {name: round(ms, 2) for name, ms in sorted(parts.items(), key=lambda kv: -kv[1]) if ms >= 0.005}
    checked = {} if machine is None else {MACHINE: round(machine, 2)}
    return {"total": round(sum(parts.values()), 2), **parts, **checked}


def bare_sms(ctx, count: int, *, label: str = "bare: SMS tasks", cpu_key: str = "bare_sms_cpu_ms") -> float:
    """Publish ``count + 1`` SMS tasks; return tasks per second until the fake received them all, and keep
    their CPU per task in ``ctx.shared[cpu_key]``."""
    from bench.bare import sms
    from bench.data import PHONE

    queue = ctx.stack.queues["sms"]

    def publish(i: int) -> None:
        sms.apply_async(args=[PHONE.format(i % 100), f"Bare SMS {i}"], queue=queue, routing_key=queue)

    return sms_tasks(ctx, count, label=label, publish=publish, cpu_key=cpu_key)


def sms_tasks(ctx, count: int, *, label: str, publish: Callable[[int], None], cpu_key: str) -> float:
    """``publish(i)`` for ``i`` in ``0..count`` (a task each that sends one SMS); return tasks per second
    until the fake received them all, and keep their CPU per task in ``ctx.shared[cpu_key]``."""
    offset = ctx.stack.fake_count()
    cpu = ctx.stack.cpu_times()
    started = time.time()
    with Progress(f"{label}: publish", count + 1) as bar:
        for i in range(count + 1):
            publish(i)
            if i % 200 == 0:
                bar.update(i)
        bar.update(count + 1)
    _wait(f"{label}: deliver", count + 1, lambda: ctx.stack.fake_count() - offset, timeout=120 + count / 5)
    ctx.shared[cpu_key] = cpu_per_item(cpu, ctx.stack.cpu_times(), count + 1)
    last = max(m["received_at"] for m in ctx.stack.fake_messages(offset))
    return rate(count + 1, last - started)


# A backend publishes its statistics about a second after its last transaction, unless another held the
# shared entry then (the whole stack writes to one database): it tries again after ten seconds idle
# (PostgreSQL's PGSTAT_IDLE_INTERVAL). Read sooner, the counts missed most of a busy phase's work.
STATS_SETTLE = 11.0


def _settled_db_activity(ctx) -> dict[str, int]:
    time.sleep(STATS_SETTLE)
    return ctx.stack.db_activity()


def tracked(
    ctx,
    count: int,
    *,
    label: str = "tracked: alert jobs",
    profile: str = "",
    worker_pid: int | None = None,
    count_db: bool = True,
) -> dict[str, object]:
    """Send ``count`` one-off alerts now and wait until every job is final and every SMS arrived.

    ``profile``: the name of the worker's py-spy profile with ``--profile`` (none if empty);
    ``worker_pid``: the process tree to profile (default the figure's worker);
    ``count_db``: whether to count the database's transactions and rows written per job (a warm-up does
    not: each count waits ``STATS_SETTLE`` seconds for the server's statistics).
    """
    from django.db.models import Max
    from django.utils import timezone

    from alerts.models import Alert
    from alerts.services import alert_send_now
    from scheduler.models import FINAL_STATES, Job, State

    far = timezone.now() + timedelta(days=365)
    ids = data.alerts(
        count,
        name=lambda i: f"bench throughput {uuid.uuid4().hex[:8]} {i}",
        message=lambda i: "Throughput test for {{ contact.name }}: {{ alert.name }}",
        contact_ids=ctx.contact_ids,
        send_at=lambda i: far,
        label=f"{label}: create alerts",
    )
    alerts = list(Alert.objects.filter(pk__in=ids).order_by("pk"))
    offset = ctx.stack.fake_count()
    since = timezone.now()
    folder = ctx.args.profile if profile else None
    db = _settled_db_activity(ctx) if count_db else None
    cpu = ctx.stack.cpu_times()
    pid = worker_pid or ctx.worker.pid
    with Profiler(folder, f"worker-{profile}", pid), Profiler(folder, f"bench-send-now-{profile}", os.getpid()):
        started = time.time()
        with Progress(f"{label}: send now", count) as bar:
            for i, alert in enumerate(alerts):
                alert_send_now(alert=alert)
                if i % 50 == 0:
                    bar.update(i)
            bar.update(count)
        enqueued = time.time()
        jobs = Job.objects.filter(task_name="alerts.deliver_sms", created_at__gte=since)
        _wait(f"{label}: deliver", count, lambda: ctx.stack.fake_count() - offset, timeout=120 + count / 5)
    _wait(f"{label}: final states", count, lambda: jobs.filter(state__in=sorted(FINAL_STATES)).count(), timeout=120)
    cpu_ms = cpu_per_item(cpu, ctx.stack.cpu_times(), count)
    db_after = _settled_db_activity(ctx) if db is not None else None
    db_per_job = {key: round((db_after[key] - db[key]) / count, 1) for key in db} if db is not None else None
    last_final = jobs.aggregate(last=Max("finished_at"))["last"].timestamp()
    last_sms = max(m["received_at"] for m in ctx.stack.fake_messages(offset))
    failed = jobs.exclude(state=State.SUCCEEDED).count()
    if failed:
        note(f"  warning: {failed} of {count} tracked jobs did not succeed")
    return {
        "per_s": rate(count, max(last_final, last_sms) - started),
        "enqueue_per_s": rate(count, enqueued - started),
        "failed": failed,
        "cpu_ms": cpu_ms,
        "db_per_job": db_per_job,
    }


def run(ctx) -> dict[str, object]:
    scale = ctx.scale
    bare(ctx, 200, label="warm-up: bare")
    tracked(ctx, 20, label="warm-up: tracked", count_db=False)
    bare_sms(ctx, 20, label="warm-up: bare SMS")
    bare_per_s = bare(ctx, scale["bare_n"])
    sms_per_s = bare_sms(ctx, scale["tracked_n"])
    result = tracked(ctx, scale["tracked_n"], profile="tracked")
    ctx.shared["enqueue_per_s"] = result["enqueue_per_s"]
    plain_per_s = latency.plain_celery(ctx, scale["tracked_n"])
    floor.run(ctx, 20, label="warm-up: floor")
    floor_per_s = floor.run(ctx, scale["tracked_n"])
    slow = latency.run(ctx, tracked)
    embedded = {"embedded_jobs_per_s": _round(result["per_s"], 1)} if ctx.stack.broker == "embedded" else {}
    return {
        **embedded,
        **slow,
        "plain_celery_sms_per_s": _round(plain_per_s, 1),
        "tracked_vs_plain_celery_ratio": _round(ratio(result["per_s"], plain_per_s), 3),
        "tracked_cpu_ms_total": result["cpu_ms"]["total"],
        "tracked_db_per_job": result["db_per_job"],
        "throughput_ratio": _round(ratio(result["per_s"], bare_per_s), 3),
        "tracked_jobs_per_s": _round(result["per_s"], 1),
        "bare_tasks_per_s": _round(bare_per_s, 1),
        "tracked_enqueue_per_s": _round(result["enqueue_per_s"], 1),
        "bare_sms_tasks_per_s": _round(sms_per_s, 1),
        "tracked_vs_bare_sms_ratio": _round(ratio(result["per_s"], sms_per_s), 3),
        "tracked_failed": result["failed"],
        "tracked_cpu_ms_per_job": result["cpu_ms"],
        "bare_cpu_ms_per_task": ctx.shared.get("bare_cpu_ms"),
        "bare_sms_cpu_ms_per_task": ctx.shared.get("bare_sms_cpu_ms"),
        "plain_celery_cpu_ms_per_task": ctx.shared.get("plain_cpu_ms"),
        "floor_sms_per_s": _round(floor_per_s, 1),
        "floor_vs_plain_celery_ratio": _round(ratio(floor_per_s, plain_per_s), 3),
        "floor_vs_bare_sms_ratio": _round(ratio(floor_per_s, sms_per_s), 3),
        "tracked_vs_floor_ratio": _round(ratio(result["per_s"], floor_per_s), 3),
        "floor_cpu_ms_per_task": ctx.shared.get("floor_cpu_ms"),
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    value = keys.get("throughput_ratio")
    embedded = keys.get("embedded_jobs_per_s")
    plain = keys.get("tracked_vs_plain_celery_ratio")
    return [
        *(
            [
                (
                    "  embedded broker: tracked alert jobs",
                    show(embedded, "/s"),
                    ">= 50",
                    verdict(embedded, lambda v: v >= 50),
                )
            ]
            if "embedded_jobs_per_s" in keys
            else []
        ),
        ("1 throughput: tracked alert jobs", show(keys.get("tracked_jobs_per_s"), "/s"), "", ""),
        ("  bare no-op tasks", show(keys.get("bare_tasks_per_s"), "/s"), "", ""),
        ("  ratio tracked / bare", show(value), ">= 0.7", verdict(value, lambda v: v >= 0.7)),
        ("  bare SMS tasks (same Twilio call, nothing tracked)", show(keys.get("bare_sms_tasks_per_s"), "/s"), "", ""),
        ("  ratio tracked / bare SMS", show(keys.get("tracked_vs_bare_sms_ratio")), "", ""),
        ("  enqueue (send now, one process)", show(keys.get("tracked_enqueue_per_s"), "/s"), "", ""),
        ("  CPU per tracked job", _cpu(keys.get("tracked_cpu_ms_per_job")), "", ""),
        ("  database per tracked job (its own counters)", _db(keys.get("tracked_db_per_job")), "", ""),
        ("  CPU per bare no-op task", _cpu(keys.get("bare_cpu_ms_per_task")), "", ""),
        ("  CPU per bare SMS task", _cpu(keys.get("bare_sms_cpu_ms_per_task")), "", ""),
        ("  plain Celery SMS (SDK + django-celery-results)", show(keys.get("plain_celery_sms_per_s"), "/s"), "", ""),
        ("  ratio tracked / plain Celery", show(plain), ">= 1.0", verdict(plain, lambda v: v >= 1.0)),
        ("  CPU per plain Celery SMS task", _cpu(keys.get("plain_celery_cpu_ms_per_task")), "", ""),
        ("  floor: only the 3 commits tracking needs, by hand", show(keys.get("floor_sms_per_s"), "/s"), "", ""),
        (
            "  ratio floor / plain Celery; floor / bare SMS",
            _pair(keys, "floor_vs_plain_celery_ratio", "floor_vs_bare_sms_ratio"),
            "",
            "",
        ),
        ("  ratio tracked / floor", show(keys.get("tracked_vs_floor_ratio")), "", ""),
        ("  CPU per floor task", _cpu(keys.get("floor_cpu_ms_per_task")), "", ""),
        *latency.rows(keys),
    ]


def _pair(keys: dict, first: str, second: str) -> str:
    return f"{show(keys.get(first))}; {show(keys.get(second))}"


def _db(counts: dict[str, float] | None) -> str:
    if not counts:
        return "n/a"
    return f"{counts['transactions']} transactions, {counts['rows_written']} rows written"


def _cpu(parts: dict[str, float] | None) -> str:
    if not parts:
        return "n/a"
    top = [f"{name} {ms}" for name, ms in list(parts.items())[1:4] if name != MACHINE]
    machine = f"; {MACHINE} {parts[MACHINE]}" if MACHINE in parts else ""
    return f"{parts['total']} ms ({', '.join(top)}{machine})"
