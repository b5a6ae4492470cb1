"""The embedded default: SQLite shared by web, worker and beat must not report 'database is locked'."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from scheduler.models import EventKind, Job, JobEvent
from tests.factories import JobFactory

pytestmark = pytest.mark.only_on("sqlite")


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout_and_immediate_transactions():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 30_000
    assert connection.transaction_mode == "IMMEDIATE"


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_wait_for_each_other_instead_of_failing():
    job = JobFactory()
    errors: list[BaseException] = []

    def write_events() -> None:
        try:
            for _ in range(25):
                with transaction.atomic():
                    JobEvent.objects.create(job=job, kind=EventKind.PROGRESS)
                    Job.objects.filter(pk=job.pk).update(status_message="busy")
        except BaseException as exc:  # noqa: BLE001  (collected and asserted below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write_events) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert JobEvent.objects.filter(job=job, kind=EventKind.PROGRESS).count() == 100
