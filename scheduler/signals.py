"""Worker-side hook: the ``received`` event of a job whose message a worker holds until its ETA.

Only messages with an ETA get one: such a message waits in the worker's memory, and the event says
which worker holds it and until when. A message without an ETA starts within moments, and its
``started`` event says as much; recording its receipt too would cost a write in the worker's consumer
loop, which every message of that worker waits behind.
"""

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

    if request is None or request.name not in registry or not request.eta:
        return
    try:
        # A tracked task's message carries its job's id; the task id says whether it is the current message.
        job_id = request.args[0] if request.args else None
        if job_id is not None and Job.objects.filter(pk=job_id, celery_task_id=request.id).exists():
            lifecycle.record_event(
                job_id, EventKind.RECEIVED, hostname=request.hostname or "", message=f"held until {request.eta}"
            )
    except Exception:
        logger.exception("could not record the receipt of task %s", request.id)
    finally:
        # This runs in the worker's consumer, outside any task: give back a connection past its age.
        connection.close_if_unusable_or_obsolete()
