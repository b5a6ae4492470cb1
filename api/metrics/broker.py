"""Messages waiting in each broker queue, asked at most every ``CACHE_SECONDS`` and never for long."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

from config.celery import app

logger = logging.getLogger(__name__)

CACHE_SECONDS = 15.0
TIMEOUT_SECONDS = 2.0

_lock = threading.Lock()
_cache: tuple[float, dict[str, int] | None] = (0.0, None)


def _ask() -> dict[str, int] | None:
    depths = {}
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
            channel = connection.default_channel
            for name, broker_queue in settings.JOB_BROKER_QUEUES.items():
                depths[name] = channel.queue_declare(queue=broker_queue, passive=True).message_count
    except Exception:
        # A scrape must answer: the broker's own health is /healthz's business, here it is `broker_up 0`.
        logger.warning("metrics: the broker's queue depths could not be read", exc_info=True)
        return None
    return depths


def queue_depths() -> dict[str, int] | None:
    """Messages ready in each job queue (by the queue's name in JOB_QUEUES), or ``None`` if unreachable."""
    global _cache
    with _lock:
        asked_at, depths = _cache
        if time.monotonic() - asked_at > CACHE_SECONDS:
            depths = _ask()
            _cache = (time.monotonic(), depths)
        return depths


def forget() -> None:
    global _cache
    with _lock:
        _cache = (0.0, None)
