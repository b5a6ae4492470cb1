"""Background tasks of alerts: thin wrappers that re-fetch, check and call a service.

The services import this module (to enqueue); this module imports them inside the task bodies, so that
neither import needs the other to be loaded first.
"""

from __future__ import annotations

import logging

from celery import shared_task

from alerts.models import Channel
from scheduler.tracked import tracked_task

logger = logging.getLogger(__name__)

# Each job gets its alert's own policy (attempts, delay) when it is enqueued; these are the defaults.
# Failures that a retry can fix surface as RetryLater, which the engine always retries.


@tracked_task(name="alerts.deliver_sms", queue="sms", max_attempts=24)
def deliver_sms(job, occurrence_id: int, contact_id: int | None = None) -> dict[str, object]:
    from alerts.delivery import occurrence_deliver

    return occurrence_deliver(job=job, occurrence_id=occurrence_id, channel=Channel.SMS, contact_id=contact_id)


@tracked_task(name="alerts.deliver_email", queue="email", max_attempts=24)
def deliver_email(job, occurrence_id: int, contact_id: int | None = None) -> dict[str, object]:
    from alerts.delivery import occurrence_deliver

    return occurrence_deliver(job=job, occurrence_id=occurrence_id, channel=Channel.EMAIL, contact_id=contact_id)


DELIVERY_TASKS = {Channel.SMS: deliver_sms, Channel.EMAIL: deliver_email}


@shared_task(name="alerts.plan_due", ignore_result=True)
def plan_due() -> None:
    """Run by celery beat: plan the occurrences coming within the look-ahead; infrastructure, untracked."""
    from alerts.planner import alerts_plan_due

    report = alerts_plan_due()
    if report.occurrences or report.skipped:
        logger.info("planner: %s", report)
