"""Background tasks of alerts: thin wrappers that re-fetch, check and call a service."""

from __future__ import annotations

from celery import shared_task

from alerts import channels
from alerts.channels.base import DeliveryChannel
from alerts.delivery import occurrence_deliver
from alerts.services import alert_recurring_tick
from scheduler.tracked import TrackedTask, tracked_task

# Each job gets its alert's own policy (attempts, delay) when it is enqueued; these are the defaults.
# Failures that a retry can fix surface as RetryLater, which the engine always retries.


def delivery_task(channel: DeliveryChannel) -> TrackedTask:
    """The tracked task delivering an occurrence on ``channel`` (``alerts.deliver_<name>``, on its queue)."""

    def deliver(job, occurrence_id: int) -> dict[str, object]:
        return occurrence_deliver(job=job, occurrence_id=occurrence_id, channel=channel.name)

    deliver.__name__ = deliver.__qualname__ = f"deliver_{channel.name}"
    deliver.__doc__ = f"Deliver one occurrence of an alert by {channel.name} to each of its recipients."
    return tracked_task(name=f"alerts.deliver_{channel.name}", queue=channel.queue, max_attempts=24)(deliver)


DELIVERY_TASKS = {name: delivery_task(channel) for name, channel in channels.registry.items()}


@shared_task(name="alerts.recurring_tick", ignore_result=True)
def recurring_tick(alert_id: int) -> None:
    """Run by celery beat for each recurring alert; small and untracked: its effect is the delivery job."""
    alert_recurring_tick(alert_id=alert_id)
