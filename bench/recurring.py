"""Figure 5, recurring scale: many crontab alerts due at the same minute, with the planner running.

Two runs, each with its own set of alerts (a daily crontab ``M H * * *`` in UTC for its minute ``T``,
one SMS recipient each), synced the way the admin does it (``alerts.services.alert_schedule_sync``: the
alert's next due time, planned as an occurrence with its job once it comes within the look-ahead).
Beat runs the planner (``alerts.plan_due``), and the workers the service ships (``runstack.worker_commands``,
as in the provider-latency figure) deliver. Measured per alert: the time from ``T``
until the fake Twilio server received its SMS; duplicates are SMS beyond the first for one alert. The
second run has five edits a second going on (a random alert of its set is saved and re-synced, with a
new message, or with its crontab rewritten to an equivalent one, which goes through the schedule-edit
path without moving ``T``), from the end of its setup until its deliveries are over; every alert must
still be delivered once. The planner's own lag: when each occurrence for ``T`` was planned, against
``T`` (negative: ahead of time).

A third run measures the planner alone at a larger scale (50,000 alerts; small: 1,000) due over the
next few minutes, with the same edits going on: beat is stopped and this process runs the planner at
its interval, as beat would, with the engine's horizon at zero so that the jobs it plans wait in the
database instead of being delivered (their delivery is the first runs' subject). Lag p99: how long
after its due time each occurrence was planned, 0 when planned ahead.

``T`` is the first minute boundary after the setup will be over: the sync rate is measured on the first
few alerts, the rest are synced in parallel processes.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from datetime import UTC, datetime

from bench import data
from bench.progress import Progress, note, show, verdict
from bench.stats import duplicates, scaled, summary

TITLE = "Recurring scale"
PLACEHOLDER = "0 0 1 1 *"  # never in the next minutes: only for measuring the sync rate
STALL = 120  # seconds without a new delivery before a run gives up waiting


def _minute_after(moment: float) -> datetime:
    return datetime.fromtimestamp(math.ceil(moment / 60) * 60, UTC)


def _setup(ctx, name: str) -> tuple[list[int], datetime, int]:
    """The run's alerts, synced for one minute ahead; returns them, that minute, and the fake Twilio's message
    count from before the sync (an alert synced early in it can be delivered before it ends)."""
    from alerts.models import Alert

    count = ctx.scale["recurring_n"]
    ids = data.alerts(
        count,
        name=lambda i: f"bench recurring {name} {i}",
        message=lambda i: f"Recurring {name} {{{{ alert.pk }}}} for {{{{ contact.name }}}}",
        contact_ids=ctx.contact_ids,
        schedule_kind="crontab",
        crontab=PLACEHOLDER,
        label=f"run {name}: create alerts",
    )
    sample = ids[: min(len(ids), 20)]
    started = time.monotonic()
    data.sync_schedules(sample)
    per_alert = (time.monotonic() - started) / len(sample)
    # Half as much again as the sequential cost (the parallel sync is faster, but slows down as the tables
    # grow and on a busy host), plus beat's start and a margin.
    due = _minute_after(time.time() + 1.5 * per_alert * count + 5 + count / 500)
    Alert.objects.filter(pk__in=ids).update(crontab=f"{due.minute} {due.hour} * * *")
    offset = ctx.stack.fake_count()
    seconds = data.run_parallel(data.sync_schedules, ids, label=f"run {name}: sync schedules", processes=2)
    note(f"  run {name}: {count} alerts synced in {seconds:.1f}s ({count / seconds:.0f}/s), due at {due:%H:%M} UTC")
    if time.time() > due.timestamp():
        overrun = time.time() - due.timestamp()
        note(f"  run {name}: the sync ended {overrun:.0f}s after the due minute: the alerts synced after it are due "
             "tomorrow and show as not delivered (the machine was slower than estimated)")  # fmt: skip
    return ids, due, offset


EDITS_PER_SECOND = 5


class Editor(threading.Thread):
    """Five edits a second: a random alert gets a new message, or its crontab rewritten to an equivalent
    one (the schedule-edit path, without moving its due time), and is saved and re-synced."""

    def __init__(self, ids: list[int], name: str) -> None:
        super().__init__(name="bench-editor", daemon=True)
        self.ids = ids
        self.label = name
        self.stop = threading.Event()
        self.edits = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection

        from alerts.models import Alert
        from alerts.services import alert_schedule_sync

        chooser = random.Random(len(self.ids))
        next_edit = time.monotonic()
        try:
            while not self.stop.wait(max(0.0, next_edit - time.monotonic())):
                next_edit += 1.0 / EDITS_PER_SECOND
                alert = Alert.objects.get(pk=chooser.choice(self.ids))
                if self.edits % 2:
                    minute, hour, *_ = alert.crontab.split()
                    every_day = "*" if alert.crontab.endswith(" 0-6") else "0-6"
                    alert.crontab = f"{minute} {hour} * * {every_day}"
                else:
                    alert.message = f"Recurring {self.label} {{{{ alert.pk }}}} (edit {self.edits + 1})"
                alert.save()
                alert_schedule_sync(alert=alert)
                self.edits += 1
        except BaseException as exc:  # reported by the run, not lost in a thread
            self.error = exc
        finally:
            connection.close()


def _plan_lag(ids: list[int], due: datetime) -> dict[str, float | None]:
    """When the occurrences due at ``due`` were planned, in seconds after it (negative: ahead)."""
    from alerts.models import Occurrence

    created = Occurrence.objects.filter(alert_id__in=ids, scheduled_for=due).values_list("created_at", flat=True)
    return summary([(at - due).total_seconds() for at in created])


def _deliveries(ctx, name: str, ids: list[int], due: datetime, offset: int) -> dict[str, object]:
    """Wait for one SMS per alert of the run (or a stall), then read the lateness of each."""
    pattern = re.compile(rf"^Recurring {name} (\d+) ")
    wanted = {str(pk) for pk in ids}
    first: dict[str, float] = {}
    counts: dict[str, int] = {}
    cursor = offset
    with Progress(f"run {name}: wait for {due:%H:%M}", max(int(due.timestamp() - time.time()), 0)) as bar:
        while time.time() < due.timestamp():
            bar.update(int(bar.total - (due.timestamp() - time.time())))
            time.sleep(0.5)
    last_progress = time.time()
    with Progress(f"run {name}: deliveries", len(ids)) as bar:
        while True:
            messages = ctx.stack.fake_messages(cursor)
            cursor += len(messages)
            for message in messages:
                match = pattern.match(message["body"])
                if match and match.group(1) in wanted:
                    counts[match.group(1)] = counts.get(match.group(1), 0) + 1
                    first.setdefault(match.group(1), message["received_at"])
                    last_progress = time.time()
            bar.update(len(first))
            if len(first) >= len(ids) or time.time() - last_progress > STALL:
                break
            time.sleep(0.5)
    time.sleep(2)  # a duplicate would come now
    for message in ctx.stack.fake_messages(cursor):
        match = pattern.match(message["body"])
        if match and match.group(1) in wanted:
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    stats = summary([at - due.timestamp() for at in first.values()])
    missing = len(ids) - len(first)
    if missing:
        note(f"  run {name}: {missing} of {len(ids)} alerts not delivered ({STALL}s without a new delivery)")
        for line in _whereabouts([int(pk) for pk in wanted - set(first)], due):
            note(f"    {line}")
    lag = _plan_lag(ids, due)
    return {
        "p50": scaled(stats["p50"], 1, 2),
        "p99": scaled(stats["p99"], 1, 2),
        "max": scaled(stats["max"], 1, 2),
        "early": sum(1 for at in first.values() if at < due.timestamp()),
        "duplicates": duplicates(counts.values()),
        "missing": missing,
        "plan_lag_p99": scaled(lag["p99"], 1, 2),
    }


def _whereabouts(alert_ids: list[int], due: datetime) -> list[str]:
    """Where the undelivered alerts' jobs for ``due`` are: counts by state and status, and the rest."""
    from collections import Counter

    from alerts.models import Occurrence
    from scheduler.models import Job

    occurrences = dict(
        Occurrence.objects.filter(alert_id__in=alert_ids, scheduled_for=due).values_list("pk", "alert_id")
    )
    jobs = Job.objects.filter(target_id__in=[str(pk) for pk in alert_ids], eta=due)
    by_state = Counter((job.state, job.status_message[:70], job.args[0] in occurrences) for job in jobs)
    lines = [
        f"{count} job(s) {state}, occurrence {'there' if there else 'gone'}: {message or '-'}"
        for (state, message, there), count in by_state.most_common(6)
    ]
    with_job = {int(job.target_id) for job in jobs}
    lines.append(f"{len(set(alert_ids) - with_job)} alert(s) with no job due then; {len(occurrences)} occurrences")
    return lines


def _drop_leftovers(ctx, beat) -> int:
    """Stop beat and drop what is still queued: the next run (or figure) starts from empty queues."""
    ctx.stack.stop(beat)
    left = ctx.stack.queue_depth("default")
    ctx.stack.purge_queues()
    return left


class Planner(threading.Thread):
    """The planner at its interval, in this process, as beat would run it on a worker."""

    def __init__(self) -> None:
        super().__init__(name="bench-planner", daemon=True)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.conf import settings
        from django.db import connection

        from alerts.planner import alerts_plan_due

        try:
            while not self.stop.is_set():
                started = time.monotonic()
                alerts_plan_due()
                self.stop.wait(max(0.0, settings.ALERT_PLAN_INTERVAL.total_seconds() - (time.monotonic() - started)))
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()


def _planner_alone(ctx) -> dict[str, object]:
    """The planner keeping up with many alerts due over a few minutes, with edits going on."""
    from datetime import timedelta as delta

    from django.conf import settings

    from alerts.models import Alert, Occurrence
    from scheduler.models import Job, State

    count = ctx.scale["plan_n"]
    minutes = 5 if count >= 10_000 else 2
    ids = data.alerts(count, name=lambda i: f"bench planner {i}", message=lambda i: "Planner {{ alert.pk }}",
                      contact_ids=ctx.contact_ids, schedule_kind="crontab", crontab=PLACEHOLDER,
                      label="planner: create alerts")  # fmt: skip
    first = _minute_after(time.time() + 15)
    dues = [first + delta(minutes=m) for m in range(minutes)]
    for m, due in enumerate(dues):  # scenery: what alert_schedule_sync writes for a never-planned alert
        for start in range(m, len(ids), minutes * 5000):
            group = ids[start : start + minutes * 5000 : minutes]
            Alert.objects.filter(pk__in=group).update(crontab=f"{due.minute} {due.hour} * * *", next_due_at=due)
    horizon = settings.JOB_ETA_HORIZON
    settings.JOB_ETA_HORIZON = delta(0)  # the planned jobs wait in the database: delivery is not measured here
    planner, editor = Planner(), Editor(ids, "planner")
    planner.start()
    editor.start()
    try:
        with Progress("planner: alerts due over the next minutes", minutes * 60) as bar:
            while time.time() < dues[-1].timestamp() + 5:
                bar.update(min(bar.total, int(time.time() - first.timestamp() + 60)))
                time.sleep(1)
    finally:
        for thread in (planner, editor):
            thread.stop.set()
            thread.join(timeout=120)
        settings.JOB_ETA_HORIZON = horizon
    for thread in (planner, editor):
        if thread.error is not None:
            raise thread.error
    planned = Occurrence.objects.filter(alert_id__in=ids, scheduled_for__in=dues)
    lags = [max(0.0, (at - due).total_seconds()) for at, due in planned.values_list("created_at", "scheduled_for")]
    Job.objects.filter(state=State.SCHEDULED, eta__in=dues).delete()
    stats = summary(lags)
    note(f"  planner: {len(lags)} of {count} occurrences planned, {editor.edits} edits, lag p99 {stats['p99']}")
    return {"plan_lag_p99": scaled(stats["p99"], 1, 2), "plan_missing": count - len(lags), "plan_edits": editor.edits}


def run(ctx) -> dict[str, object]:
    """The recurring figures; leaves the figure's worker stopped (the next figure starts one)."""
    stack = ctx.stack
    if ctx.worker is not None:
        stack.stop(ctx.worker)
        ctx.worker = None
    workers = stack.start_shipped_workers()
    try:
        return _runs(ctx)
    finally:
        for worker in workers:
            stack.stop(worker)


def _runs(ctx) -> dict[str, object]:
    stack = ctx.stack
    ids_a, due_a, offset_a = _setup(ctx, "A")
    beat = stack.start_beat()
    editor = None
    try:
        plain = _deliveries(ctx, "A", ids_a, due_a, offset_a)
        _drop_leftovers(ctx, beat)
        ids_b, due_b, offset_b = _setup(ctx, "B")
        beat = stack.start_beat()
        editor = Editor(ids_b, "B")
        editor.start()
        try:
            edited = _deliveries(ctx, "B", ids_b, due_b, offset_b)
        finally:
            editor.stop.set()
            editor.join(timeout=60)
        if editor.error is not None:
            raise editor.error
        _drop_leftovers(ctx, beat)
        alone = _planner_alone(ctx)
    finally:
        stack.stop(beat)
    keys: dict[str, object] = {
        "recurring_p99_s": plain["p99"],
        "recurring_duplicates": plain["duplicates"] + edited["duplicates"],
        "recurring_alerts": len(ids_a),
        "recurring_edits": editor.edits,
        "recurring_edit_undelivered": edited["missing"],
        "recurring_50k_plan_lag_p99_s": alone["plan_lag_p99"],
        "recurring_50k_plan_missing": alone["plan_missing"],
        "recurring_50k_alerts": ctx.scale["plan_n"],
        "recurring_50k_edits": alone["plan_edits"],
    }
    for prefix, result in (("recurring", plain), ("recurring_edit", edited)):
        for name in ("p50", "p99", "max"):
            keys[f"{prefix}_{name}_s"] = result[name]
        for name in ("early", "missing", "duplicates"):
            keys[f"{prefix}_{name}"] = result[name]
        keys[f"{prefix}_plan_lag_p99_s"] = result["plan_lag_p99"]
    return keys


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    out = []
    for prefix, title in (
        ("recurring", "5 recurring: "),
        ("recurring_edit", f"  with {EDITS_PER_SECOND} edits a second: "),
    ):
        p99 = keys.get(f"{prefix}_p99_s")
        missing, early = keys.get(f"{prefix}_missing"), keys.get(f"{prefix}_early")
        out += [
            (f"{title}{keys.get('recurring_alerts')} alerts, p99", show(p99, " s"), "<= 60 s",
             verdict(p99, lambda v: v <= 60)),
            ("    p50 / max", f"{show(keys.get(f'{prefix}_p50_s'))} / {show(keys.get(f'{prefix}_max_s'), ' s')}",
             "", ""),
            ("    not delivered / early", f"{show(missing)} / {show(early)}", "0 / 0",
             verdict(None if missing is None else missing + (early or 0), lambda v: v == 0)),
            ("    planned, p99 after the due time", show(keys.get(f"{prefix}_plan_lag_p99_s"), " s"), "", ""),
        ]  # fmt: skip
    duplicates_ = keys.get("recurring_duplicates")
    lag = keys.get("recurring_50k_plan_lag_p99_s")
    out += [
        ("  duplicates (both runs)", show(duplicates_), "0", verdict(duplicates_, lambda v: v == 0)),
        ("  schedule edits during the second run", show(keys.get("recurring_edits")), "", ""),
        (f"  planner alone, {keys.get('recurring_50k_alerts')} alerts with edits: lag p99", show(lag, " s"),
         "<= 5 s", verdict(lag, lambda v: v <= 5)),
        ("    occurrences not planned", show(keys.get("recurring_50k_plan_missing")), "0",
         verdict(keys.get("recurring_50k_plan_missing"), lambda v: v == 0)),
    ]  # fmt: skip
    return out
