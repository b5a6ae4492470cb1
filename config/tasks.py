"""Housekeeping of the infrastructure itself, run by celery beat on the ``maintenance`` queue."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from config import broker

logger = logging.getLogger(__name__)


@shared_task(name="config.embedded_broker_housekeeping", ignore_result=True)
def embedded_broker_housekeeping() -> int:
    """Delete control messages nobody read (broadcasts copied to the queues of workers that are gone)."""
    if not broker.is_embedded(settings.CELERY_BROKER_URL):
        return 0
    deleted = broker.prune_stale_control_messages(settings.EMBEDDED_BROKER_DIR)
    if deleted:
        logger.info("embedded broker: deleted %d stale control message(s)", deleted)
    return deleted
