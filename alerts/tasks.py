"""Background tasks of alerts: thin wrappers that re-fetch, check and call a service."""

from __future__ import annotations

from celery import shared_task

from alerts.delivery import occurrence_deliver
from alerts.models import Channel
from alerts.services import alert_recurring_tick
from scheduler.tracked import tracked_task

# Each job gets its alert's own policy (attempts, delay) when it is enqueued; these are the defaults.
# Failures that a retry can fix surface as RetryLater, which the engine always retries.


@tracked_task(name="alerts.deliver_sms", queue="sms", max_attempts=24)
def deliver_sms(job, occurrence_id: int) -> dict[str, object]:
    return occurrence_deliver(job=job, occurrence_id=occurrence_id, channel=Channel.SMS)


@tracked_task(name="alerts.deliver_email", queue="email", max_attempts=24)
def deliver_email(job, occurrence_id: int) -> dict[str, object]:
    return occurrence_deliver(job=job, occurrence_id=occurrence_id, channel=Channel.EMAIL)


DELIVERY_TASKS = {Channel.SMS: deliver_sms, Channel.EMAIL: deliver_email}


@shared_task(name="alerts.recurring_tick", ignore_result=True)
def recurring_tick(alert_id: int) -> None:
    """Run by celery beat for each recurring alert; small and untracked: its effect is the delivery job."""
    alert_recurring_tick(alert_id=alert_id)
