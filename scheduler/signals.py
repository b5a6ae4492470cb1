"""Worker-side hook: the ``received`` event of a job, when a worker takes its message."""

from __future__ import annotations

import logging

from celery.signals import task_received
from django.db import connection

from scheduler import lifecycle
from scheduler.models import EventKind, Job

logger = logging.getLogger(__name__)


@task_received.connect
def record_receipt(sender=None, request=None, **kwargs) -> None:
    from scheduler.tracked import registry

    if request is None or request.name not in registry:
        return
    try:
        job_id = Job.objects.filter(celery_task_id=request.id).values_list("pk", flat=True).first()
        if job_id is not None:
            eta = f"; runs at {request.eta}" if request.eta else ""
            lifecycle.record_event(
                job_id, EventKind.RECEIVED, hostname=request.hostname or "", message=f"by worker{eta}"
            )
    except Exception:
        logger.exception("could not record the receipt of task %s", request.id)
    finally:
        # This runs in the worker's consumer, outside any task: give back a connection past its age.
        connection.close_if_unusable_or_obsolete()
