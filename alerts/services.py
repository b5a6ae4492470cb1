"""Writes on alerts: scheduling their occurrences, keeping celery beat in sync, and their life cycle."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from alerts import schedules
from alerts.models import Alert, AlertState, Delivery, DeliveryState, Occurrence, ScheduleKind
from alerts.selectors import alert_due_times, alert_jobs
from scheduler.models import WAITING_STATES
from scheduler.services import job_cancel

logger = logging.getLogger(__name__)

RECURRING_TICK_TASK = "alerts.recurring_tick"
# A beat tick this late still delivers the occurrence it was for (a beat restart, a busy broker).
TICK_CATCH_UP = timedelta(minutes=10)


class AlertNotActive(Exception):
    pass


def occurrence_label(alert: Alert, channel: str) -> str:
    recipients = alert.recipients.count()
    return f"{alert.name} · {channel} · {recipients} recipient{'s' if recipients != 1 else ''}"


def occurrence_enqueue(*, alert: Alert, scheduled_for: datetime) -> Occurrence:
    """Record the occurrence and enqueue one delivery job per channel; idempotent.

    The occurrence's time is its identity: a second beat process, a replayed tick or a double click
    finds the existing occurrence and its jobs instead of making new ones.
    """
    from alerts.tasks import DELIVERY_TASKS

    with transaction.atomic():
        occurrence, _ = Occurrence.objects.get_or_create(alert=alert, scheduled_for=scheduled_for)
        for channel in alert.channels:
            DELIVERY_TASKS[channel].enqueue_with(
                args=[occurrence.pk],
                eta=scheduled_for,
                target=alert,
                unique_key=f"occurrence:{occurrence.pk}:{channel}",
                label=occurrence_label(alert, channel),
                max_attempts=alert.max_attempts,
                retry_delay=alert.retry_delay,
            )
    return occurrence


def alert_enqueue_next(*, alert: Alert, after: datetime | None = None) -> Occurrence | None:
    """Enqueue the alert's next occurrence after ``after`` (now), if it has one and is active."""
    if alert.state != AlertState.ACTIVE:
        return None
    upcoming = alert_due_times(alert, after=after or timezone.now(), count=1)
    if not upcoming:
        return None
    return occurrence_enqueue(alert=alert, scheduled_for=upcoming[0])


def _sync_periodic_task(alert: Alert) -> None:
    """Keep the alert's celery beat entry (django-celery-beat) in step with its schedule and state."""
    if not alert.is_recurring:
        if alert.periodic_task_id:
            PeriodicTask.objects.filter(pk=alert.periodic_task_id).delete()
            Alert.objects.filter(pk=alert.pk).update(periodic_task=None)
            alert.periodic_task = None
        return
    crontab = interval = None
    if alert.schedule_kind == ScheduleKind.CRONTAB:
        minute, hour, day_of_month, month, day_of_week = schedules.parse_crontab(alert.crontab).fields
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
            timezone=str(alert.timezone),
        )
    else:
        interval, _ = IntervalSchedule.objects.get_or_create(every=alert.interval_every, period=alert.interval_unit)
    values = {
        "task": RECURRING_TICK_TASK,
        "kwargs": json.dumps({"alert_id": alert.pk}),
        "crontab": crontab,
        "interval": interval,
        "enabled": alert.state == AlertState.ACTIVE,
        "queue": settings.JOB_BROKER_QUEUES["default"],
        "description": f"Beat tick of alert {alert.pk} ({alert.name}); managed by the alert, edit the alert instead.",
    }
    task, _ = PeriodicTask.objects.update_or_create(name=f"alert {alert.pk}", defaults=values)
    if alert.periodic_task_id != task.pk:
        Alert.objects.filter(pk=alert.pk).update(periodic_task=task)
        alert.periodic_task = task


def _cancel_future_occurrences(alert: Alert, *, reason: str) -> int:
    """Cancel the waiting jobs of occurrences still to come, and forget those occurrences."""
    now = timezone.now()
    future = Occurrence.objects.filter(alert=alert, scheduled_for__gt=now)
    future_ids = [str(pk) for pk in future.values_list("pk", flat=True)]
    cancelled = 0
    for job in alert_jobs(alert).filter(state__in=WAITING_STATES).only("pk", "args"):
        if job.args and str(job.args[0]) in future_ids:
            cancelled += job_cancel(job_id=job.pk, reason=reason)
    future.filter(deliveries__isnull=True).delete()
    return cancelled


def alert_schedule_sync(*, alert: Alert) -> Occurrence | None:
    """After an alert was created or edited: re-plan what is to come, and enqueue the next occurrence."""
    with transaction.atomic():
        _cancel_future_occurrences(alert, reason="the alert's schedule was edited")
        _sync_periodic_task(alert)
        return alert_enqueue_next(alert=alert)


def alert_recurring_tick(*, alert_id: int, now: datetime | None = None) -> Occurrence | None:
    """What one beat tick of a recurring alert does: make sure the due and the next occurrence exist.

    The occurrence time comes from the alert's schedule (and its DST policy), not from the moment beat
    fired, so ticks from two beat processes, or a replayed tick, land on the same occurrence.
    """
    now = now or timezone.now()
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None or not alert.is_recurring or alert.state != AlertState.ACTIVE:
        return None
    # Catch up on what a late tick missed, but never on times from before the schedule was last saved.
    for due in alert_due_times(alert, after=max(now - TICK_CATCH_UP, alert.modified_at), count=50):
        if due > now:
            break
        occurrence_enqueue(alert=alert, scheduled_for=due)
    return alert_enqueue_next(alert=alert, after=now)


def _set_state(alert: Alert, state: AlertState, *, from_states: tuple[AlertState, ...]) -> bool:
    changed = Alert.objects.filter(pk=alert.pk, state__in=from_states).update(state=state, modified_at=timezone.now())
    if changed:
        alert.state = state
        _sync_periodic_task(alert)
    return bool(changed)


def alert_pause(*, alert: Alert) -> bool:
    """Pause: nothing is sent while paused; jobs that come due abort, saying why."""
    return _set_state(alert, AlertState.PAUSED, from_states=(AlertState.ACTIVE,))


def alert_resume(*, alert: Alert) -> Occurrence | None:
    if not _set_state(alert, AlertState.ACTIVE, from_states=(AlertState.PAUSED,)):
        raise AlertNotActive(f"“{alert}” is {alert.state}; only paused alerts can be resumed.")
    return alert_enqueue_next(alert=alert)


def alert_cancel(*, alert: Alert) -> int:
    """Cancel the alert and every job of it that has not finished; return how many jobs were cancelled."""
    with transaction.atomic():
        _set_state(alert, AlertState.CANCELLED, from_states=(AlertState.ACTIVE, AlertState.PAUSED))
        jobs = alert_jobs(alert).filter(state__in=(*WAITING_STATES, "running")).values_list("pk", flat=True)
        return sum(job_cancel(job_id=pk, reason="the alert was cancelled") for pk in jobs)


def alert_acknowledge(*, alert: Alert, by: str) -> bool:
    """Acknowledged: no more reminders; pending retries abort at their abort check."""
    changed = _set_state(
        alert, AlertState.ACKNOWLEDGED, from_states=(AlertState.ACTIVE, AlertState.PAUSED, AlertState.COMPLETED)
    )
    if changed:
        logger.info("alert %s acknowledged by %s", alert.pk, by)
    return changed


def alert_send_now(*, alert: Alert) -> Occurrence:
    """Deliver an occurrence now, besides the schedule."""
    if alert.state == AlertState.COMPLETED:
        _set_state(alert, AlertState.ACTIVE, from_states=(AlertState.COMPLETED,))
    if alert.state != AlertState.ACTIVE:
        raise AlertNotActive(f"“{alert}” is {alert.state}; resume or re-create it to send.")
    return occurrence_enqueue(alert=alert, scheduled_for=timezone.now())


def alert_duplicate(*, alert: Alert) -> Alert:
    """A paused copy, so that it sends nothing until someone has looked at it."""
    recipients = list(alert.recipients.all())
    copy = Alert.objects.get(pk=alert.pk)
    copy.pk = None
    copy.name = f"{alert.name} (copy)"[:200]
    copy.state = AlertState.PAUSED
    copy.periodic_task = None
    copy.save()
    copy.recipients.set(recipients)
    _sync_periodic_task(copy)
    return copy


def alert_complete_if_done(*, alert: Alert, finishing_job_id: int) -> bool:
    """A one-off alert is completed once no other job of it is waiting or running."""
    if alert.is_recurring:
        return False
    others = alert_jobs(alert).filter(state__in=(*WAITING_STATES, "running")).exclude(pk=finishing_job_id)
    # One statement: the check and the change together.
    done = Alert.objects.filter(~Exists(others), pk=alert.pk, state=AlertState.ACTIVE)
    return bool(done.update(state=AlertState.COMPLETED))


# Twilio's message statuses, and the delivery states each may replace: a late "sent" never undoes "delivered".
_STATUS_UPDATES = {
    "sent": (DeliveryState.SENT, (DeliveryState.SENDING, DeliveryState.UNKNOWN)),
    "delivered": (DeliveryState.DELIVERED, (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.UNKNOWN)),
    "undelivered": (DeliveryState.UNDELIVERED, (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.UNKNOWN)),
    "failed": (DeliveryState.FAILED, (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.UNKNOWN)),
}


def delivery_status_update(*, provider_id: str, status: str, error_code: str = "") -> bool:
    """Apply a Twilio status callback to its delivery; ``False`` if it changes nothing."""
    update = _STATUS_UPDATES.get(status)
    if not provider_id or update is None:
        return False
    state, replaces = update
    values: dict[str, object] = {"state": state, "modified_at": timezone.now()}
    if error_code:
        values["error"] = f"Twilio error {error_code}"
    return bool(Delivery.objects.filter(provider_id=provider_id, state__in=replaces).update(**values))
