"""A prefork worker keeps its PostgreSQL connection between tasks (Celery's fixup would close it)."""

from __future__ import annotations

import pytest

from tests.testapp.tasks import database_session

pytestmark = pytest.mark.only_on("postgresql")


def test_a_worker_process_reuses_its_database_connection_from_task_to_task(worker_process):
    worker_process(concurrency=1, TEST_CONN_MAX_AGE="300")
    sessions = []
    for _ in range(3):
        job = database_session.enqueue()
        job.wait(timeout=60)
        assert job.successful(), job.errors
        sessions.append(job.result)
    assert len(set(sessions)) == 1
