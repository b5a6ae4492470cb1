"""Background tasks of alerts: thin wrappers that re-fetch, check and call a service.

The services import this module (to enqueue); this module imports them inside the task bodies, so that
neither import needs the other to be loaded first.
"""

from __future__ import annotations

import logging

from celery import shared_task

from alerts import channels
from alerts.channels.base import DeliveryChannel
from scheduler.tracked import TrackedTask, tracked_task

logger = logging.getLogger(__name__)

# Each job gets its alert's own policy (attempts, delay) when it is enqueued; these are the defaults.
# Failures that a retry can fix surface as RetryLater, which the engine always retries.


def delivery_task(channel: DeliveryChannel) -> TrackedTask:
    """The tracked task delivering an occurrence on ``channel`` (``alerts.deliver_<name>``, on its queue)."""

    def deliver(
        job,
        occurrence_id: int,
        contact_id: int | None = None,
        escalation_round: int = 0,
        escalation_step: int = 0,
        share: int = 0,
        shares: int = 1,
    ) -> dict[str, object]:
        from alerts.delivery import occurrence_deliver
        from alerts.escalation import Stage
        from alerts.fanout import Share

        return occurrence_deliver(
            job=job, occurrence_id=occurrence_id, channel=channel.name, contact_id=contact_id,
            stage=Stage(escalation_round, escalation_step), share=Share(share, shares),
        )  # fmt: skip

    deliver.__name__ = deliver.__qualname__ = f"deliver_{channel.name}"
    deliver.__doc__ = f"Deliver one occurrence of an alert by {channel.name} to each of its recipients."
    return tracked_task(name=f"alerts.deliver_{channel.name}", queue=channel.queue, max_attempts=24)(deliver)


DELIVERY_TASKS = {name: delivery_task(channel) for name, channel in channels.registry.items()}


@shared_task(name="alerts.plan_due", ignore_result=True)
def plan_due() -> None:
    """Run by celery beat: plan the occurrences coming within the look-ahead; infrastructure, untracked."""
    from alerts.planner import alerts_plan_due

    report = alerts_plan_due()
    if report.occurrences or report.skipped:
        logger.info("planner: %s", report)
