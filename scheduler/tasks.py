"""The engine's own periodic tasks, run by celery beat on the ``maintenance`` queue.

They are infrastructure, not work: they are logged but not tracked as jobs, or every dispatcher tick
would add a row to the job list every few seconds.
"""

from __future__ import annotations

import logging

from celery import shared_task

from scheduler import publishing, recovery, retention

logger = logging.getLogger(__name__)


@shared_task(name="scheduler.dispatch_due_jobs", ignore_result=True)
def dispatch_due_jobs() -> int:
    sent = publishing.dispatch_due()
    if sent:
        logger.info("dispatched %d job(s) that came within the horizon", sent)
    return sent


@shared_task(name="scheduler.sweep_jobs", ignore_result=True)
def sweep_jobs() -> None:
    report = recovery.jobs_sweep()
    if report:
        logger.warning("recovery sweep: %s", report)


@shared_task(name="scheduler.prune_jobs", ignore_result=True)
def prune_jobs() -> None:
    report = retention.prune(budget=retention.PERIODIC_TIME_BUDGET.total_seconds())
    if report.deleted or not report.complete:
        logger.info("retention: %s", report)
