"""``python -m bench``: every figure of docs/benchmarks.md, a table, then one JSON line (the last of stdout).

    python -m bench                      # full scale, RabbitMQ
    BENCH_SCALE=small python -m bench --broker redis
    BENCH_SCALE=small python -m bench --broker embedded --only throughput   # embedded_jobs_per_s
    python -m bench --only throughput,timing --keep-logs

Timings are printed, never asserted: a missed target does not fail the run; an error does (exit 1).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from bench.progress import note, table
from bench.stack import BenchError, Proc, Stack

# The order of the run: the pages' million rows come last, the memory figure restarts its worker.
FIGURES = ["throughput", "timing", "cancel", "recurring", "memory", "pages"]
KEYS = [
    "throughput_ratio", "tracked_jobs_per_s", "bare_tasks_per_s", "eta_p50_ms", "eta_p99_ms", "eta_early",
    "far_future_worker_rss_growth_mb", "bare_eta_worker_rss_growth_mb", "jobs_page_p95_ms", "jobs_page_queries",
    "api_jobs_p95_ms", "api_jobs_queries", "metrics_scrape_p95_ms",
    "recurring_p99_s", "recurring_duplicates", "recurring_edit_undelivered", "recurring_50k_plan_lag_p99_s",
    "cancel_all_s", "cancel_all_ran_after", "broker", "embedded_jobs_per_s", "jobs_page_p95_during_prune_ms",
    "provider_latency_jobs_per_s", "provider_latency_bare_prefork_per_s", "tracked_vs_bare_sms_ratio",
    "tracked_vs_plain_celery_ratio", "tracked_cpu_ms_total", "fanout_sms_per_s", "fanout_one_job_sms_per_s",
]  # fmt: skip
SCALES: dict[str, dict[str, int]] = {
    "full": {
        "bare_n": 20_000, "tracked_n": 3_000, "latency_tracked_n": 3_000, "latency_bare_n": 200,
        "fanout_n": 10_000, "fanout_one_job_n": 40,
        "eta_rate": 50, "eta_seconds": 60,
        "cancel_n": 100_000, "cancel_published": 5_000,
        "recurring_n": 10_000, "plan_n": 50_000,
        "far_n": 100_000, "bare_eta_n": 100_000,
        "page_rows": 1_000_000, "page_samples": 40,
    },
    "small": {
        "bare_n": 2_000, "tracked_n": 300, "latency_tracked_n": 300, "latency_bare_n": 40,
        "fanout_n": 1_000, "fanout_one_job_n": 20,
        "eta_rate": 50, "eta_seconds": 10,
        "cancel_n": 10_000, "cancel_published": 300,
        "recurring_n": 300, "plan_n": 1_000,
        "far_n": 5_000, "bare_eta_n": 5_000,
        "page_rows": 100_000, "page_samples": 20,
    },
}  # fmt: skip


@dataclass
class Context:
    stack: Stack
    scale: dict[str, int]
    concurrency: int
    args: argparse.Namespace
    worker: Proc | None = None
    contact_ids: list[int] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=["rabbitmq", "redis", "embedded"], default="rabbitmq")
    parser.add_argument("--scale", choices=sorted(SCALES), default=os.environ.get("BENCH_SCALE") or "full")
    parser.add_argument("--large", action="store_true", help="far-future memory with 1,000,000 alerts")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2, help="worker processes (prefork)")
    parser.add_argument("--only", default="", help=f"a comma-separated selection of {','.join(FIGURES)}")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (path printed)")
    parser.add_argument("--eta-rate", type=int, help="alerts due per second in the timing figure (default 50)")
    parser.add_argument(
        "--qos-fix",
        action="store_true",
        help="workers apply ETA prefetch increments before polling (bench/celery_app.py)",
    )
    parser.add_argument(
        "--provider-latency-ms",
        type=float,
        default=250.0,
        help="how late the fake Twilio answers each message in the provider-latency figure (default 250)",
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy on the workers and this process (bench/profile.py)")
    args = parser.parse_args(argv)
    if args.scale not in SCALES:
        parser.error(f"BENCH_SCALE must be one of {', '.join(SCALES)}")
    args.figures = [name.strip() for name in args.only.split(",") if name.strip()] or FIGURES
    unknown = set(args.figures) - set(FIGURES)
    if unknown:
        parser.error(f"--only: unknown figure(s) {', '.join(sorted(unknown))}")
    return args


def _raise_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _run(ctx: Context, results: dict[str, Any], rows: list[tuple[str, str, str, str]]) -> None:
    stack = ctx.stack
    started = time.monotonic()
    note(f"bench: {ctx.args.scale} scale, {stack.broker}, {ctx.concurrency} worker processes, {os.cpu_count()} cores")
    stack.check_services()
    stack.create_database()
    stack.start_fake_twilio()
    stack.setup_django()
    from bench import data

    ctx.contact_ids = data.contacts(100)
    ctx.worker = stack.start_worker(concurrency=ctx.concurrency)
    note(f"stack ready in {time.monotonic() - started:.1f}s (database {stack.db_name}, queues {stack.tag}-*)")
    for name in FIGURES:
        if name not in ctx.args.figures:
            continue
        module = importlib.import_module(f"bench.{name}")
        if ctx.worker is None and name != "pages":  # the memory figure leaves none behind
            ctx.worker = stack.start_worker(concurrency=ctx.concurrency)
        load = os.getloadavg()[0]
        note(f"\n== {module.TITLE} == (load average before: {load:.2f})")
        results.setdefault("load_average_before", {})[name] = round(load, 2)
        figure_started = time.monotonic()
        keys = module.run(ctx)
        results.update(keys)
        rows.extend(module.rows(keys))
        note(f"   {module.TITLE}: {time.monotonic() - figure_started:.1f}s")
    note(f"\nbench: all figures in {time.monotonic() - started:.1f}s")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    scale = dict(SCALES[args.scale])
    if args.large:
        scale["far_n"] = 1_000_000
    if args.eta_rate:
        scale["eta_rate"] = args.eta_rate
    stack = Stack(args.broker)
    stack.keep_tmp = args.keep_logs
    stack.qos_fix = args.qos_fix
    atexit.register(stack.close)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_on_signal)
    # Ctrl-C: KeyboardInterrupt even when started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ctx = Context(stack=stack, scale=scale, concurrency=args.concurrency, args=args)
    results: dict[str, Any] = dict.fromkeys(KEYS)
    results.update(broker=args.broker, scale=args.scale, cores=os.cpu_count(), worker_concurrency=args.concurrency,
                   qos_fix=args.qos_fix)  # fmt: skip
    rows: list[tuple[str, str, str, str]] = []
    status = 0
    try:
        _run(ctx, results, rows)
    except KeyboardInterrupt:
        note("\ninterrupted: cleaning up")
        status = 130
    except SystemExit as exc:
        note(f"\nstopped by a signal: cleaning up ({exc})")
        status = exc.code if isinstance(exc.code, int) else 1
    except BenchError as exc:
        note(f"\nbench failed: {exc}")
        status = 1
    except Exception:
        note("\nbench failed with an error:\n" + traceback.format_exc())
        for proc in stack.procs:
            note(f"--- last lines of {proc.name}'s log ---\n{proc.log_tail(2000)}")
        status = 1
    finally:
        stack.close()
    print(table(rows, headers=("figure", "measured", "target", "")), flush=True)
    print(json.dumps(results), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
