"""The reads behind /metrics. Each walks an index and stops early: no COUNT(*) over the whole job table.

- Waiting and running jobs per state are counted on an index that begins with the state, index only, up to
  ``STATE_CAP`` each; their split by task and queue needs the rows, so it reads at most ``BREAKDOWN_CAP`` of
  them from the partial index of active jobs (``job_active_recent``).
- What finished (jobs, deliveries, lateness) is read over the last ``WINDOW`` from the recency index
  (``job_state_recent``), at most ``RECENT_CAP`` jobs per state: rates come from these windows.
- The oldest waiting job is one index probe per waiting state (``job_state_eta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, F, QuerySet

from alerts.models import Delivery, DeliveryState
from scheduler.models import ACTIVE_STATES, FINAL_STATES, WAITING_STATES, Job, State

WINDOW = timedelta(minutes=5)
STATE_CAP = 100_000
BREAKDOWN_CAP = 5_000
RECENT_CAP = 10_000
WORKER_WINDOW = timedelta(minutes=1)
ACCEPTED = (DeliveryState.SENT, DeliveryState.DELIVERED)


@dataclass(frozen=True)
class Counted:
    counts: dict[tuple[str, ...], int]
    capped: bool


def active_jobs_by_state(*, cap: int = STATE_CAP) -> Counted:
    """Waiting and running jobs per state, each counted up to ``cap`` in one query.

    ``SELECT (SELECT COUNT(*) FROM (SELECT 1 … WHERE state = %s LIMIT cap+1)), …``: index-only scans of an
    index that begins with the state, however large the table.
    """
    states = sorted(ACTIVE_STATES)
    parts, params = [], []
    for state in states:
        sql, sql_params = Job.objects.filter(state=state).order_by().values("id")[: cap + 1].query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped)")
        params.extend(sql_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        counts = dict(zip(((state,) for state in states), cursor.fetchone(), strict=True))
    return Counted(counts, capped=any(n > cap for n in counts.values()))


def active_jobs_by_state_task_queue(*, cap: int = BREAKDOWN_CAP) -> Counted:
    """Waiting and running jobs by (state, task, queue), over at most ``cap`` of them (the most recently
    changed: the partial index of active jobs is in that order). Each needs its row, so the cap is lower.

    Grouped over the ``LIMIT``-ed subquery itself: ``id IN (subquery)`` would join it against the whole
    table. The ORM cannot group a sliced subquery, so its compiled SQL is wrapped here.
    """
    active = Job.objects.filter(state__in=sorted(ACTIVE_STATES)).order_by().values("state", "task_name", "queue")
    sql, params = active[: cap + 1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT state, task_name, queue, COUNT(*) FROM ({sql}) AS capped GROUP BY state, task_name, queue",
            params,
        )
        counts = {(state, task, queue): n for state, task, queue, n in cursor.fetchall()}
    return Counted(counts, capped=sum(counts.values()) > cap)


def recent_jobs(*, state: str | None, now: datetime) -> QuerySet[Job]:
    """The ids of at most ``RECENT_CAP`` jobs changed in the last ``WINDOW``, as a subquery (one query
    whatever it finds)."""
    jobs = Job.objects.filter(modified_at__gte=now - WINDOW)
    if state is not None:
        jobs = jobs.filter(state=state)
    return jobs.order_by("-modified_at", "-id").values("id")[:RECENT_CAP]


def finished_jobs_by_state_task(*, now: datetime) -> dict[tuple[str, str], int]:
    """Jobs that ended in the last ``WINDOW``, by (state, task); at most ``RECENT_CAP`` per state."""
    counts: dict[tuple[str, str], int] = {}
    for state in sorted(FINAL_STATES):
        rows = (
            Job.objects.filter(id__in=recent_jobs(state=state, now=now))
            .order_by()
            .values_list("task_name")
            .annotate(n=Count("id"))
        )
        counts.update({(state, task): n for task, n in rows})
    return counts


def recent_deliveries_by_state_channel(*, now: datetime) -> dict[tuple[str, str], int]:
    """Deliveries whose job changed in the last ``WINDOW`` (found through the jobs' recency index)."""
    deliveries = Delivery.objects.filter(job_id__in=recent_jobs(state=None, now=now)).order_by()
    rows = deliveries.values_list("state", "channel").annotate(n=Count("id"))
    return {(state, channel): n for state, channel, n in rows}


def recent_provider_errors(*, now: datetime) -> dict[tuple[str, str], int]:
    """Deliveries whose job changed in the last ``WINDOW`` and whose last attempt the provider refused or
    did not answer, by channel and the provider's code."""
    deliveries = Delivery.objects.filter(job_id__in=recent_jobs(state=None, now=now)).exclude(error_code="")
    rows = deliveries.order_by().values_list("channel", "error_code").annotate(n=Count("id"))
    return {(channel, code): n for channel, code, n in rows}


def recent_delivery_lateness(*, now: datetime) -> list[float]:
    """Seconds from each occurrence's due time to the end of the job that handed it to the provider, for
    the deliveries accepted in the last ``WINDOW``. The job ends right after the provider's answer."""
    rows = (
        Delivery.objects.filter(
            job_id__in=recent_jobs(state=State.SUCCEEDED, now=now), state__in=ACCEPTED, job__finished_at__isnull=False
        )
        .annotate(late=F("job__finished_at") - F("occurrence__scheduled_for"))
        .values_list("late", flat=True)
    )
    return [max(late.total_seconds(), 0.0) for late in rows]


def oldest_waiting_eta(*, now: datetime) -> datetime | None:
    """The earliest due time among jobs that are due and not running yet (one probe per waiting state)."""
    etas = [
        Job.objects.filter(state=state, eta__lte=now).order_by("eta").values_list("eta", flat=True).first()
        for state in sorted(WAITING_STATES)
    ]
    etas = [eta for eta in etas if eta is not None]
    return min(etas) if etas else None


def workers_seen(*, now: datetime) -> set[str]:
    """Workers that started, renewed or finished a job in the last minute."""
    return set(
        Job.objects.filter(modified_at__gte=now - WORKER_WINDOW)
        .exclude(worker="")
        .order_by("-modified_at", "-id")
        .values_list("worker", flat=True)[:RECENT_CAP]
    )
