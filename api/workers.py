"""What the workers and queues page shows: Celery's ``inspect`` (cached, asked in the background, so that a
page view never waits on the broker), the broker's queue depths, and jobs per minute from the database."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max
from django.db.models.functions import TruncMinute
from django.utils import timezone

from api.metrics import broker
from config.celery import app
from scheduler.models import Job, State

logger = logging.getLogger(__name__)

MAX_AGE = timedelta(seconds=15)
INSPECT_TIMEOUT_SECONDS = 1.0
CHART_MINUTES = 60
# The workers' last activity is read from at most this many recent jobs (the recency index).
RECENT_JOBS_CAP = 10_000


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    queues: list[str]
    pool: str
    concurrency: int | None


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    workers: list[WorkerInfo] = field(default_factory=list)
    queue_depths: dict[str, int] | None = None
    error: str = ""


_lock = threading.Lock()
_snapshot: Snapshot | None = None
_refreshing = False


def _queue_names() -> dict[str, str]:
    return {broker_name: name for name, broker_name in settings.JOB_BROKER_QUEUES.items()}


def take_snapshot() -> Snapshot:
    """Ask the workers and the broker now (two broadcasts of a second each), and keep the answer for the page.

    Two questions only, as each waits its whole timeout for workers that may not answer; what runs where
    comes from the jobs' rows instead (``worker_activity``). A worker that answers one question late shows
    with what it answered.
    """
    global _snapshot
    names = _queue_names()
    try:
        inspect = app.control.inspect(timeout=INSPECT_TIMEOUT_SECONDS)
        stats = inspect.stats() or {}
        queues = inspect.active_queues() or {}
    except Exception as exc:
        logger.warning("workers page: inspect failed", exc_info=True)
        snapshot = Snapshot(taken_at=timezone.now(), queue_depths=broker.queue_depths(), error=str(exc))
    else:
        workers = [
            WorkerInfo(
                name=name,
                queues=sorted(names.get(q["name"], q["name"]) for q in queues.get(name, [])),
                pool=str(stats.get(name, {}).get("pool", {}).get("implementation", "")).rsplit(":", 1)[-1],
                concurrency=stats.get(name, {}).get("pool", {}).get("max-concurrency"),
            )
            for name in sorted(set(stats) | set(queues))
        ]
        snapshot = Snapshot(taken_at=timezone.now(), workers=workers, queue_depths=broker.queue_depths())
    with _lock:
        _snapshot = snapshot
    return snapshot


def _refresh_in_background() -> None:
    global _refreshing
    try:
        take_snapshot()
    finally:
        with _lock:
            _refreshing = False


def cached_snapshot() -> Snapshot | None:
    """The last snapshot (``None`` before the first); a stale one starts a refresh in a thread and is shown
    meanwhile, with its age."""
    global _refreshing
    with _lock:
        stale = _snapshot is None or timezone.now() - _snapshot.taken_at > MAX_AGE
        if stale and not _refreshing:
            _refreshing = True
            threading.Thread(target=_refresh_in_background, name="workers-inspect", daemon=True).start()
        return _snapshot


def forget() -> None:
    global _snapshot
    with _lock:
        _snapshot = None


# --- From the database -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerActivity:
    running_jobs: int
    last_activity: datetime | None


def worker_activity(*, now: datetime) -> dict[str, WorkerActivity]:
    """Per worker: its running jobs (the index of active jobs) and its last job change in the last hour."""
    running = dict(
        Job.objects.filter(state=State.RUNNING)
        .exclude(worker="")
        .order_by()
        .values_list("worker")
        .annotate(n=Count("id"))
    )
    recent = Job.objects.filter(modified_at__gte=now - timedelta(hours=1)).order_by("-modified_at", "-id")
    last = dict(
        Job.objects.filter(id__in=recent.values("id")[:RECENT_JOBS_CAP])
        .exclude(worker="")
        .order_by()
        .values_list("worker")
        .annotate(at=Max("modified_at"))
    )
    return {
        worker: WorkerActivity(running_jobs=running.get(worker, 0), last_activity=last.get(worker))
        for worker in sorted(set(running) | set(last))
    }


@dataclass(frozen=True)
class MinuteBar:
    minute: datetime
    succeeded: int
    failed: int


def jobs_per_minute(*, now: datetime, minutes: int = CHART_MINUTES) -> list[MinuteBar]:
    """Jobs that succeeded and failed in each of the last ``minutes`` minutes (on ``job_state_recent``)."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    counts: dict[tuple[str, datetime], int] = {}
    for state in (State.SUCCEEDED, State.FAILED):
        rows = (
            Job.objects.filter(state=state, modified_at__gte=start, modified_at__lt=end)
            .annotate(minute=TruncMinute("modified_at"))
            .order_by()
            .values_list("minute")
            .annotate(n=Count("id"))
        )
        counts.update({(state, minute): n for minute, n in rows})
    bars = []
    for index in range(minutes):
        minute = start + timedelta(minutes=index)
        bars.append(MinuteBar(minute, counts.get((State.SUCCEEDED, minute), 0), counts.get((State.FAILED, minute), 0)))
    return bars
