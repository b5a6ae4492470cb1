"""The Celery application, configured from Django's settings (the ``CELERY_`` names)."""

from __future__ import annotations

import os

from celery import Celery, signals, states
from celery.backends.base import DisabledBackend
from django.conf import settings
from django.db import close_old_connections
from django.db.backends.signals import connection_created

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


@signals.celeryd_init.connect
def plan_worker_statements_once(**kwargs) -> None:
    """Give a worker's PostgreSQL connections ``DATABASE_WORKER_PLAN_CACHE_MODE`` (``auto``), as they open.

    Web and beat plan every run of a prepared statement (the settings' ``force_custom_plan``): the job
    pages' and the scrape's counts depend on their values, and generic plans made the scrape three times
    slower. A worker's statements are mostly keyed by a job's or a delivery's id, where PostgreSQL's
    generic plan is the same plan, made once per connection: a third of PostgreSQL's CPU per tracked
    job (docs/benchmarks.md). ``celeryd_init`` is sent by the ``celery worker`` command only, before its
    pool starts, so every pool process and thread inherits the hook.
    """
    connection_created.connect(_set_worker_plan_cache_mode, dispatch_uid="plan_worker_statements_once")


def _set_worker_plan_cache_mode(sender, connection, **kwargs) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('plan_cache_mode', %s, false)", [settings.DATABASE_WORKER_PLAN_CACHE_MODE])
