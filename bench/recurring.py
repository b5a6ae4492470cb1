"""Figure 5, recurring scale: many crontab alerts due at the same minute, with celery beat running.

Two runs, each with its own set of alerts (a daily crontab ``M H * * *`` in UTC for its minute ``T``,
one SMS recipient each), synced the way the admin does it (``alerts.services.alert_schedule_sync``: the
beat entry, and the job of the next occurrence, due at ``T``). Beat (DatabaseScheduler) starts once a
set is synced. Measured per alert: the time from ``T`` until the fake Twilio server received its SMS;
duplicates are SMS beyond the first for one alert (one occurrence per alert in a run). The second run has
one schedule edit per second going on (a random alert of its set gets a new message, is saved and
re-synced), from the end of its setup until its deliveries are over. Beat's own work is shown too: the
time from ``T`` until every alert's tick had enqueued its next occurrence (tomorrow's).

``T`` is the first minute boundary after the setup will be over: the sync rate is measured on the first
few alerts, the rest are synced in parallel processes.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from datetime import UTC, datetime, timedelta

from bench import data
from bench.progress import Progress, note, show, verdict
from bench.stats import duplicates, scaled, summary

TITLE = "Recurring scale"
PLACEHOLDER = "0 0 1 1 *"  # never in the next minutes: only for measuring the sync rate
STALL = 120  # seconds without a new delivery before a run gives up waiting


def _minute_after(moment: float) -> datetime:
    return datetime.fromtimestamp(math.ceil(moment / 60) * 60, UTC)


def _setup(ctx, name: str) -> tuple[list[int], datetime]:
    from django_celery_beat.models import CrontabSchedule

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
    # Sequential cost as the estimate (the parallel sync is faster), plus beat's start and a margin.
    due = _minute_after(time.time() + per_alert * count + 5 + count / 500)
    Alert.objects.filter(pk__in=ids).update(crontab=f"{due.minute} {due.hour} * * *")
    # Made here once: alerts.services syncs with CrontabSchedule.objects.get_or_create, and the model has
    # no unique constraint, so two processes creating the same schedule at once leave two rows, after
    # which every sync of that schedule fails (MultipleObjectsReturned). See docs/benchmarks.md.
    CrontabSchedule.objects.get_or_create(
        minute=str(due.minute),
        hour=str(due.hour),
        day_of_month="*",
        month_of_year="*",
        day_of_week="*",
        timezone="UTC",
    )
    seconds = data.run_parallel(data.sync_schedules, ids, label=f"run {name}: sync schedules", processes=2)
    note(f"  run {name}: {count} alerts synced in {seconds:.1f}s ({count / seconds:.0f}/s), due at {due:%H:%M} UTC")
    return ids, due


class Editor(threading.Thread):
    """One schedule edit per second: a new message for a random alert, saved and re-synced."""

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
                next_edit += 1.0
                alert = Alert.objects.get(pk=chooser.choice(self.ids))
                alert.message = f"Recurring {self.label} {{{{ alert.pk }}}} (edit {self.edits + 1})"
                alert.save()
                alert_schedule_sync(alert=alert)
                self.edits += 1
        except BaseException as exc:  # reported by the run, not lost in a thread
            self.error = exc
        finally:
            connection.close()


def _deliveries(ctx, name: str, ids: list[int], due: datetime, offset: int) -> dict[str, object]:
    """Wait for one SMS per alert of the run (or a stall), then read the lateness of each."""
    from alerts.models import Occurrence

    pattern = re.compile(rf"^Recurring {name} (\d+) ")
    wanted = {str(pk) for pk in ids}
    first: dict[str, float] = {}
    counts: dict[str, int] = {}
    cursor = offset
    tomorrow = Occurrence.objects.filter(alert_id__in=ids, scheduled_for=due + timedelta(days=1))
    ticks_done_at = None
    with Progress(f"run {name}: wait for {due:%H:%M}", max(int(due.timestamp() - time.time()), 0)) as bar:
        while time.time() < due.timestamp():
            bar.update(int(bar.total - (due.timestamp() - time.time())))
            time.sleep(0.5)
    last_progress = time.time()
    polls = 0
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
            polls += 1
            if ticks_done_at is None and polls % 4 == 0 and tomorrow.count() >= len(ids):
                ticks_done_at = time.time()
            if len(first) >= len(ids) or time.time() - last_progress > STALL:
                break
            time.sleep(0.5)
    time.sleep(2)  # a duplicate would come now
    for message in ctx.stack.fake_messages(cursor):
        match = pattern.match(message["body"])
        if match and match.group(1) in wanted:
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    # Beat's ticks: give them a little longer if they are still going (they do not deliver anything).
    deadline = time.time() + 60
    while ticks_done_at is None and time.time() < deadline:
        if tomorrow.count() >= len(ids):
            ticks_done_at = time.time()
        time.sleep(2)
    stats = summary([at - due.timestamp() for at in first.values()])
    missing = len(ids) - len(first)
    if missing:
        note(f"  run {name}: {missing} of {len(ids)} alerts not delivered ({STALL}s without a new delivery)")
        for line in _whereabouts([int(pk) for pk in wanted - set(first)], due):
            note(f"    {line}")
    return {
        "p50": scaled(stats["p50"], 1, 2),
        "p99": scaled(stats["p99"], 1, 2),
        "max": scaled(stats["max"], 1, 2),
        "early": sum(1 for at in first.values() if at < due.timestamp()),
        "duplicates": duplicates(counts.values()),
        "missing": missing,
        "ticks_s": None if ticks_done_at is None else round(ticks_done_at - due.timestamp(), 1),
        "ticks_done": tomorrow.count(),
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
    """Stop beat and drop the ticks still queued: the next run (or figure) starts from empty queues."""
    ctx.stack.stop(beat)
    left = ctx.stack.queue_depth("default")
    ctx.stack.purge_queues()
    return left


def run(ctx) -> dict[str, object]:
    stack = ctx.stack
    ids_a, due_a = _setup(ctx, "A")
    beat = stack.start_beat()
    editor = None
    try:
        plain = _deliveries(ctx, "A", ids_a, due_a, stack.fake_count())
        plain["ticks_left"] = _drop_leftovers(ctx, beat)  # B is synced without beat re-reading at each save
        ids_b, due_b = _setup(ctx, "B")
        beat = stack.start_beat()
        editor = Editor(ids_b, "B")
        editor.start()
        try:
            edited = _deliveries(ctx, "B", ids_b, due_b, stack.fake_count())
        finally:
            editor.stop.set()
            editor.join(timeout=60)
        if editor.error is not None:
            raise editor.error
        edited["ticks_left"] = _drop_leftovers(ctx, beat)
    finally:
        stack.stop(beat)
    keys: dict[str, object] = {
        "recurring_p99_s": plain["p99"],
        "recurring_duplicates": plain["duplicates"] + edited["duplicates"],
        "recurring_alerts": len(ids_a),
        "recurring_edits": editor.edits,
    }
    for prefix, result in (("recurring", plain), ("recurring_edit", edited)):
        for name in ("p50", "p99", "max"):
            keys[f"{prefix}_{name}_s"] = result[name]
        for name in ("early", "missing", "duplicates"):
            keys[f"{prefix}_{name}"] = result[name]
        keys[f"{prefix}_beat_ticks_s"] = result["ticks_s"]
        keys[f"{prefix}_beat_ticks_done"] = result["ticks_done"]
        keys[f"{prefix}_beat_ticks_dropped"] = result["ticks_left"]
    return keys


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    out = []
    for prefix, title in (("recurring", "5 recurring: "), ("recurring_edit", "  with an edit per second: ")):
        p99 = keys.get(f"{prefix}_p99_s")
        missing, early = keys.get(f"{prefix}_missing"), keys.get(f"{prefix}_early")
        out += [
            (f"{title}{keys.get('recurring_alerts')} alerts, p99", show(p99, " s"), "<= 5 s",
             verdict(p99, lambda v: v <= 5)),
            ("    p50 / max", f"{show(keys.get(f'{prefix}_p50_s'))} / {show(keys.get(f'{prefix}_max_s'), ' s')}",
             "", ""),
            ("    not delivered / early", f"{show(missing)} / {show(early)}", "0 / 0",
             verdict(None if missing is None else missing + (early or 0), lambda v: v == 0)),
            ("    beat: all ticks done after", show(keys.get(f"{prefix}_beat_ticks_s"), " s"), "", ""),
            ("    beat: ticks done / still queued at the end",
             f"{show(keys.get(f'{prefix}_beat_ticks_done'))} / {show(keys.get(f'{prefix}_beat_ticks_dropped'))}",
             "", ""),
        ]  # fmt: skip
    duplicates_ = keys.get("recurring_duplicates")
    out.append(("  duplicates (both runs)", show(duplicates_), "0", verdict(duplicates_, lambda v: v == 0)))
    out.append(("  schedule edits during the second run", show(keys.get("recurring_edits")), "", ""))
    return out
