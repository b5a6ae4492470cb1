"""The planner: turns alerts' due times into occurrences with delivery jobs, ahead of time, from the database.

One periodic task (beat, every ``ALERT_PLAN_INTERVAL``) works through the active alerts whose
``next_due_at`` comes within ``ALERT_PLAN_AHEAD``, in batches, each alert row locked (``SKIP LOCKED`` on
PostgreSQL) so that planners on several nodes share the work and an admin save or a cancel in progress is
never planned over. It plans from the alert's own ``next_due_at`` and moves it on to the following due
time, never from "now minus a margin": a late, lost or overlapping planner run loses no occurrence, and
the occurrence time is part of the job's identity, so none is delivered twice.

Why not one celery beat entry per alert (django-celery-beat's ``PeriodicTask``): beat reloads its whole
schedule whenever one entry changes, and at 10,000 entries with an edit a second it spent its time
reloading; ticks then depended on reload timing (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from alerts.escalation import NO_STAGE, Stage, policy_plan, step_label
from alerts.fanout import WHOLE, Share, occurrence_shares
from alerts.models import Alert, AlertState, Occurrence
from alerts.schedules import ScheduleError, alert_due_times
from alerts.tasks import DELIVERY_TASKS
from scheduler.services import jobs_enqueue
from scheduler.statements import columns, from_row, update_each_sql

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
ONE_TICK = timedelta(microseconds=1)


@dataclass
class PlanReport:
    alerts: int = 0
    occurrences: int = 0
    skipped: int = 0  # due times older than the catch-up window, not delivered


def occurrence_label(alert: Alert, channel: str, recipients: int, share: Share = WHOLE) -> str:
    who = f"{recipients} recipient{'s' if recipients != 1 else ''}"
    return f"{alert.name} · {channel} · {share.label} of {who}" if share else f"{alert.name} · {channel} · {who}"


def occurrence_job_key(occurrence_id: int, channel: str, stage: Stage = NO_STAGE, share: Share = WHOLE) -> str:
    """The unique key of an occurrence's delivery job on one channel (and escalation step, or share of the
    recipients): its identity, and how it is found."""
    return f"occurrence:{occurrence_id}:{channel}{stage.key_suffix}{share.key_suffix}"


def occurrence_enqueue(*, alert: Alert, scheduled_for: datetime, recipients: int | None = None) -> Occurrence:
    """Record the occurrence and enqueue its delivery jobs, one per channel and share of the recipients
    (``alerts/fanout.py``); idempotent.

    The occurrence's time is its identity: a second planner, a replayed run or a double click finds the
    existing occurrence and its jobs instead of making new ones.
    """
    if recipients is None:
        recipients = alert.recipients.count()
    [occurrence] = _occurrences_enqueue([(alert, scheduled_for)], {alert.pk: recipients})
    return occurrence


def _occurrences_enqueue(wanted: list[tuple[Alert, datetime]], recipients: dict[int, int]) -> list[Occurrence]:
    """``occurrence_enqueue`` for each (alert, time), the occurrences in one statement and their jobs in one
    ``jobs_enqueue``: a planner's batch costs a few statements, not a few per alert. Returns the occurrences
    in the same order."""
    # Within a caller's transaction (send now, the planner's batch) a savepoint would only cost round trips:
    # nothing here is retried after a failure, which fails the caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        found = _occurrences_at(wanted)
        occurrences = [found[alert.pk, scheduled_for] for alert, scheduled_for in wanted]
        requests = []
        for (alert, _), occurrence in zip(wanted, occurrences, strict=True):
            occurrence.alert = alert  # as the caller has it, instead of a query for it later
            planned = occurrence_job_requests(alert, occurrence, recipients.get(alert.pk, 0))
            if not planned and alert.escalation_policy_id is not None:
                # The form refuses a policy without steps; its steps may have been deleted since.
                logger.error("alert %s: its escalation policy %s has no step with a channel, occurrence %s "
                             "notifies nobody", alert.pk, alert.escalation_policy_id, occurrence.pk)  # fmt: skip
            requests += planned
        jobs_enqueue(requests)
    return occurrences


def occurrence_job_requests(alert: Alert, occurrence: Occurrence, recipients: int) -> list[dict[str, Any]]:
    """The delivery jobs the alert's plan, as it is now, has for the occurrence (``jobs_enqueue``'s requests):
    one per channel and share of its ``recipients``, or one per step, round and channel of its escalation
    policy, each due after the waits before it."""
    if alert.escalation_policy_id is not None:
        return _walk_requests(alert, occurrence)
    return [
        DELIVERY_TASKS[channel].request(
            args=[occurrence.pk], kwargs=share.job_kwargs, eta=occurrence.scheduled_for, target=alert,
            unique_key=occurrence_job_key(occurrence.pk, channel, share=share),
            label=occurrence_label(alert, channel, recipients, share),
            max_attempts=alert.max_attempts, retry_delay=alert.retry_delay,
        )
        for channel in alert.channels
        for share in occurrence_shares(recipients)
    ]  # fmt: skip


def _occurrences_at(wanted: list[tuple[Alert, datetime]]) -> dict[tuple[int, datetime], Occurrence]:
    """Each alert's occurrence at its time, created if new, by (alert id, time): one ``INSERT ... ON
    CONFLICT`` statement that returns the rows either way (get_or_create takes a SELECT, a savepoint, an
    INSERT and a release, per occurrence). Written out: on the path of every send now and every planned
    occurrence, the ORM's bulk_create spent more time building the statement than the database running it."""
    if not wanted:
        return {}
    ops = connection.ops
    created_at = ops.adapt_datetimefield_value(timezone.now())
    rows = ", ".join(["(%s, %s, %s, NULL, '')"] * len(wanted))
    params = [value for alert, at in wanted for value in (alert.pk, ops.adapt_datetimefield_value(at), created_at)]
    statement = _OCCURRENCE_UPSERT.format(
        table=ops.quote_name(Occurrence._meta.db_table), rows=rows, columns=columns(Occurrence, connection.alias)
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        found = [from_row(Occurrence, row) for row in cursor.fetchall()]
    return {(occurrence.alert_id, occurrence.scheduled_for): occurrence for occurrence in found}


# The no-op update on a conflict is what makes RETURNING give the existing rows (DO NOTHING returns none).
_OCCURRENCE_UPSERT = """
    INSERT INTO {table} (alert_id, scheduled_for, created_at, acknowledged_at, acknowledged_by) VALUES {rows}
    ON CONFLICT (alert_id, scheduled_for) DO UPDATE SET scheduled_for = EXCLUDED.scheduled_for RETURNING {columns}"""


def _walk_requests(alert: Alert, occurrence: Occurrence) -> list[dict[str, Any]]:
    policy = alert.escalation_policy
    plan = policy_plan(policy, occurrence.scheduled_for)
    steps = len({planned.stage.step for planned in plan})
    return [
        DELIVERY_TASKS[channel].request(
            args=[occurrence.pk], kwargs=planned.stage.job_kwargs, eta=planned.eta, target=alert,
            unique_key=occurrence_job_key(occurrence.pk, channel, planned.stage),
            label=step_label(alert, planned.stage, channel, steps=steps, rounds=policy.repeat + 1),
            max_attempts=alert.max_attempts, retry_delay=alert.retry_delay,
        )
        for planned in plan
        for channel in planned.channels
    ]  # fmt: skip


def due_after(alert: Alert, moment: datetime) -> datetime | None:
    """The alert's first due time strictly after ``moment``, by its schedule and expiry."""
    times = alert_due_times(alert, after=moment, count=1)
    return times[0] if times else None


def is_due_time(alert: Alert, moment: datetime) -> bool:
    """Whether the alert's schedule (as it is now) has a due time at exactly ``moment``."""
    return due_after(alert, moment - ONE_TICK) == moment


@dataclass(frozen=True)
class DueTimes:
    """What planning an alert now comes to: the due times to plan, and the alert's next due time after them."""

    times: list[datetime]
    following: datetime | None


def alert_due_times_now(alert: Alert, now: datetime, report: PlanReport) -> DueTimes:
    """The alert's due times from its ``next_due_at`` up to ``now + ALERT_PLAN_AHEAD``; writes nothing.

    Due times older than ``ALERT_CATCH_UP`` (the planner was down that long) are skipped with a warning
    rather than sent hours late; everything newer is delivered, late if need be. Raises ``ScheduleError``
    for a schedule that cannot be read.
    """
    due = alert.next_due_at
    # A one-off has one occurrence: its job is written at once, waiting in the database and shown on the
    # job pages until the engine's horizon publishes it. Recurring alerts are planned within the look-ahead.
    horizon = now + settings.ALERT_PLAN_AHEAD if alert.is_recurring else datetime.max.replace(tzinfo=UTC)
    oldest_allowed = now - settings.ALERT_CATCH_UP
    if due is not None and due < oldest_allowed:
        logger.warning(
            "alert %s: due times from %s to %s are older than the catch-up window and are not sent",
            alert.pk,
            due.isoformat(),
            oldest_allowed.isoformat(),
        )
        report.skipped += 1
        due = due_after(alert, oldest_allowed - ONE_TICK)
    times = []
    while due is not None and due <= horizon:
        times.append(due)
        due = due_after(alert, due)
    return DueTimes(times, due)


def alert_plan(
    *, alert: Alert, now: datetime, report: PlanReport | None = None, recipients: int | None = None
) -> list[Occurrence]:
    """Plan the alert's occurrences due up to ``now + ALERT_PLAN_AHEAD`` (``alert_due_times_now``); the
    caller holds the row lock (and may know the alert's number of ``recipients``)."""
    report = report or PlanReport()
    due = alert_due_times_now(alert, now, report)
    if recipients is None and due.times:
        recipients = alert.recipients.count()
    return _plan([(alert, due)], {alert.pk: recipients or 0}, report)[0]


def _plan(
    plans: list[tuple[Alert, DueTimes]], recipients: dict[int, int], report: PlanReport
) -> list[list[Occurrence]]:
    """Write locked alerts' plans: their occurrences with their jobs, and their next due times, in a few
    statements for all of them. Returns each alert's planned occurrences."""
    wanted = [(alert, at) for alert, due in plans for at in due.times]
    occurrences = iter(_occurrences_enqueue(wanted, recipients))
    planned = [[next(occurrences) for _ in due.times] for _, due in plans]
    moved = [alert for alert, due in plans if due.following != alert.next_due_at]
    for alert, due in plans:
        alert.next_due_at = due.following
    if moved and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*update_each_sql(Alert, "next_due_at", {alert.pk: alert.next_due_at for alert in moved}))
    elif moved:
        Alert.objects.bulk_update(moved, ["next_due_at"])
    report.occurrences += len(wanted)
    return planned


def alerts_plan_due(*, now: datetime | None = None, budget: float | None = None) -> PlanReport:
    """Plan every active alert due within the look-ahead, batch by batch, for at most ``budget`` seconds.

    Each batch is one short transaction holding its alerts' row locks; rows locked by someone else (an
    admin save, a cancel, another planner) are skipped now and planned by the next run.
    """
    report = PlanReport()
    budget = settings.ALERT_PLAN_INTERVAL.total_seconds() * 3 if budget is None else budget
    deadline = time.monotonic() + budget
    while True:
        moment = now or timezone.now()
        with transaction.atomic():
            batch = list(
                Alert.objects.select_for_update(skip_locked=True)
                .filter(state=AlertState.ACTIVE, next_due_at__lte=moment + settings.ALERT_PLAN_AHEAD)
                .order_by("next_due_at")[:BATCH_SIZE]
            )
            plans = []
            for alert in batch:
                try:
                    plans.append((alert, alert_due_times_now(alert, moment, report)))
                except ScheduleError as exc:
                    # Saved around the form's validation (a shell, a bulk update): stop planning it, loudly,
                    # instead of failing the whole batch at every run.
                    logger.error("alert %s has a schedule that cannot be read, not planned: %s", alert.pk, exc)
                    plans.append((alert, DueTimes([], None)))
            _plan(plans, _recipient_counts([alert.pk for alert in batch]), report)
        report.alerts += len(batch)
        if len(batch) < BATCH_SIZE or time.monotonic() >= deadline:
            return report


def _recipient_counts(alert_ids: list[int]) -> dict[int, int]:
    """The number of recipients of each alert that has any, in one query for a whole batch."""
    through = Alert.recipients.through.objects.filter(alert_id__in=alert_ids)
    return dict(through.order_by().values_list("alert_id").annotate(count=Count("*")))
