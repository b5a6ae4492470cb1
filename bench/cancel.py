"""Figure 6, cancel all: the time of ``scheduler.services.jobs_cancel_all`` over many waiting jobs, and
how many job bodies ran after it returned (must be 0); beside it, what PostgreSQL did meanwhile (the WAL
written, checkpoints, autovacuum workers busy), which that time follows.

The waiting jobs are alert delivery jobs (``alerts.deliver_sms``), written in bulk with SQL: most are due
in one to three days and wait in the database; the first ``cancel_published`` have real alerts and
occurrences behind them (a body that ran would send an SMS), are made due within seconds and are
published by ``scheduler.publishing.dispatch_due``, the dispatcher's own path, so that their messages
are in the broker and in the worker's hands, waiting for their ETA, when everything is cancelled. After
the cancel the benchmark waits past the last ETA and counts the jobs a worker claimed after the cancel
returned (a claim sets ``started_at``; a body cannot run without one).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bench import data
from bench.profile import InProcess
from bench.progress import Progress, note, show, verdict

TITLE = "Cancel all"
SPREAD = 5.0  # seconds over which the published jobs come due


def _insert(published: int, total: int) -> tuple[int, int]:
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from alerts.models import Alert, Occurrence

    far = timezone.now() + timedelta(days=30)
    alert_ids = data.alerts(
        published,
        name=lambda i: f"bench cancel {i}",
        message=lambda i: "Cancel test {{ alert.name }}: this SMS must never be sent",
        contact_ids=data.contacts(10),
        send_at=lambda i: far,
        label="create alerts",
    )
    occurrences = Occurrence.objects.bulk_create(
        [Occurrence(alert_id=pk, scheduled_for=far) for pk in alert_ids], batch_size=data.BATCH
    )
    params = {"ct": ContentType.objects.get_for_model(Alert).pk, "far": far, "occ": [o.pk for o in occurrences]}
    common = (
        "'{}'::jsonb, 'sms', 'scheduled', @ETA@, NULL, '', NULL, 0, 24, interval '1 hour', now(), now(), "
        "NULL, NULL, NULL, NULL, '', '', NULL, '[]'::jsonb, NULL, false, %(ct)s, "
    )
    first, _ = data.insert_jobs(
        "SELECT 'alerts.deliver_sms', 'bench cancel · sms · 1 recipient', jsonb_build_array(o.id), "
        + common.replace("@ETA@", "%(far)s")
        + "o.alert_id::text FROM alerts_occurrence o WHERE o.id = ANY(%(occ)s) ORDER BY o.id",
        params,
    )
    rest = total - published
    if rest > 0:
        data.insert_jobs(
            "SELECT 'alerts.deliver_sms', 'bench cancel · sms · 1 recipient', jsonb_build_array(%(occ0)s), "
            + common.replace("@ETA@", "now() + interval '1 day' + g * interval '2 seconds'")
            + "%(alert0)s FROM generate_series(1, %(rest)s) AS g",
            {**params, "occ0": occurrences[0].pk, "alert0": str(alert_ids[0]), "rest": rest},
        )
    data.analyze("scheduler_job", "scheduler_jobevent")
    return first, first + published - 1


def run(ctx) -> dict[str, object]:
    from django.db import connection

    from scheduler.models import Job
    from scheduler.publishing import dispatch_due
    from scheduler.services import jobs_cancel_all

    total, published = ctx.scale["cancel_n"], ctx.scale["cancel_published"]
    offset = ctx.stack.fake_count()
    first, last = _insert(published, total)
    # Due from `lead` seconds on, once published: long enough for the publishing to end first.
    lead = 2 + published / 300  # the dispatcher publishes about 500 a second here
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE scheduler_job SET eta = now() + make_interval(secs => %s + (id - %s) * %s) "
            "WHERE id BETWEEN %s AND %s",
            [lead, first, SPREAD / published, first, last],
        )
    last_due = time.time() + lead + SPREAD
    sent = 0
    publish_started = time.monotonic()
    with Progress("publish (dispatcher)", published) as bar:
        while sent < published:
            batch = dispatch_due()
            if not batch:
                break
            sent += batch
            bar.update(sent)
    note(f"  dispatcher: {sent} published in {time.monotonic() - publish_started:.1f}s")
    if sent < published:
        note(f"  warning: the dispatcher published {sent} of {published}")
    waiting = Job.objects.filter(state__in=["scheduled", "queued", "retrying"]).count()
    server_before = _server_activity()
    with InProcess(ctx.args.profile, "cancel-all"):
        started = time.time()
        cancelled = jobs_cancel_all()
        ended = time.time()
    server = _server_activity_since(server_before)
    late = max(0.0, ended - (last_due - SPREAD))
    if late:
        note(f"  note: the cancel ended {late:.1f}s after the first published job came due")
    with Progress("wait past the last ETA", int(max(last_due + 3 - time.time(), 0))) as bar:
        while time.time() < last_due + 3:
            bar.update(int(time.time() - ended))
            time.sleep(0.5)
    ended_at = datetime.fromtimestamp(ended, UTC)
    ours = Job.objects.filter(pk__gte=first)
    ran_after = ours.filter(started_at__gt=ended_at).count()
    ran_before = ours.filter(started_at__lte=ended_at).count()
    sms_after = sum(
        1 for m in ctx.stack.fake_messages(offset) if "Cancel test" in m["body"] and m["received_at"] > ended
    )
    return {
        "cancel_all_s": round(ended - started, 3),
        "cancel_all_ran_after": ran_after,
        "cancel_all_jobs": cancelled,
        "cancel_all_waiting_before": waiting,
        "cancel_all_published": sent,
        "cancel_all_ran_before": ran_before,
        "cancel_all_sms_after": sms_after,
        **server,
    }


# What else PostgreSQL did while the cancel ran, which its time follows: the WAL it wrote (a first change of
# a page after a checkpoint writes the whole page), checkpoints, autovacuum workers busy at its start.
_SERVER_ACTIVITY = """
    SELECT pg_current_wal_lsn(), checkpoints_timed + checkpoints_req,
        (SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker')
    FROM pg_stat_bgwriter"""


def _server_activity() -> tuple[str, int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_SERVER_ACTIVITY)
        return cursor.fetchone()


def _server_activity_since(before: tuple[str, int, int]) -> dict[str, object]:
    from django.db import connection

    lsn, checkpoints, autovacuum = before
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [lsn])
        wal = float(cursor.fetchone()[0])
    _, checkpoints_after, _ = _server_activity()
    return {"cancel_all_wal_mb": round(wal / 1e6, 1), "cancel_all_checkpoints": checkpoints_after - checkpoints,
            "cancel_all_autovacuum_workers": autovacuum}  # fmt: skip


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    seconds, after = keys.get("cancel_all_s"), keys.get("cancel_all_ran_after")
    return [
        (f"6 cancel all: {keys.get('cancel_all_jobs')} waiting jobs", show(seconds, " s"), "<= 2 s",
         verdict(seconds, lambda v: v <= 2)),
        ("  bodies run after the cancel", show(after), "0", verdict(after, lambda v: v == 0)),
        ("  of which published (ETA in the worker)", show(keys.get("cancel_all_published")), "", ""),
        ("  WAL written during it; checkpoints; autovacuum workers",
         f"{show(keys.get('cancel_all_wal_mb'), ' MB')}; {show(keys.get('cancel_all_checkpoints'))}; "
         f"{show(keys.get('cancel_all_autovacuum_workers'))}", "", ""),
    ]  # fmt: skip
