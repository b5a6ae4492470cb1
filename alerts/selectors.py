"""Reads on alerts: when they are due next, and their jobs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from alerts import schedules
from alerts.models import Alert, Contact, Delivery, ScheduleKind
from scheduler.models import Job
from scheduler.selectors import jobs_for_target

INTERVAL_UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}


def alert_interval(alert: Alert) -> timedelta:
    return (alert.interval_every or 0) * INTERVAL_UNITS[alert.interval_unit]


def alert_due_times(alert: Alert, *, after: datetime | None = None, count: int = 5) -> list[datetime]:
    """The next ``count`` times (UTC) the alert is due after ``after``, by its schedule, before expiry.

    Works on unsaved alerts too (the admin's preview). Raises ``ScheduleError`` for a schedule that
    cannot be read.
    """
    after = after or timezone.now()
    kind = alert.schedule_kind
    if kind in (ScheduleKind.ONCE, ScheduleKind.RELATIVE):
        times = [alert.send_at] if alert.send_at and alert.send_at > after else []
    elif kind == ScheduleKind.CRONTAB:
        times = schedules.parse_crontab(alert.crontab).occurrences(after, alert.timezone, count)
    elif kind == ScheduleKind.INTERVAL:
        start = alert.starts_at or after
        times = schedules.interval_occurrences(start, alert_interval(alert), after, count)
    else:
        raise schedules.ScheduleError(f"Unknown schedule kind {kind!r}.")
    if alert.expires_at is not None:
        times = [t for t in times if t < alert.expires_at]
    return times


def alert_jobs(alert: Alert) -> QuerySet[Job]:
    return jobs_for_target(alert)


def contact_by_phone(phone: str) -> Contact | None:
    return Contact.objects.filter(phone=phone).order_by("-is_active", "pk").first()


def latest_sms_delivery_to(contact: Contact) -> Delivery | None:
    return (
        Delivery.objects.filter(contact=contact, channel="sms")
        .select_related("occurrence__alert")
        .order_by("-created_at", "-pk")
        .first()
    )
