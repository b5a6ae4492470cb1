"""The Celery application, configured from Django's settings (the ``CELERY_`` names)."""

from __future__ import annotations

import os

from celery import Celery, signals, states
from celery.backends.base import DisabledBackend
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class NoResultBackend(DisabledBackend):
    """Celery without a result backend, that answers "nothing known" instead of raising.

    Since celery PR #9869 (5.6) a worker handling a revoke asks the result backend for the task's state, to mark it
    revoked there; the disabled backend raises, and every worker logged "Failed to mark task ... as
    revoked in backend" for each revoked id (thousands in a cancel-all or a recovery sweep). The job row
    is the engine's record, so there is nothing to mark: a task is ``PENDING`` here as it would be in
    any backend that never heard of it, and storing stays a no-op.
    """

    def get_state(self, task_id: str) -> str:
        return states.PENDING

    get_status = get_state

    def as_uri(self, *args, **kwargs) -> str:
        return "none://"


app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def reuse_database_connections(**kwargs) -> None:
    """Keep a worker's database connection from task to task, as Django keeps a web server's.

    Celery's Django fixup closes every connection before and after each task unless ``DB_REUSE_MAX``
    is set (its change that honoured ``CONN_MAX_AGE`` was reverted): a new PostgreSQL connection per
    task was a third of a tracked job's worker time in the benchmark. The settings set ``DB_REUSE_MAX``
    out of reach, and this applies Django's own rule around each task instead: close a connection that
    is past ``CONN_MAX_AGE`` or broken, and health-check the rest on their next use.
    """
    close_old_connections()
