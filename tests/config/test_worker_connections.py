"""A prefork worker keeps its PostgreSQL connection between tasks (Celery's fixup would close it), and the
statements it runs for every job are prepared on it and planned once (DATABASE_WORKER_PLAN_CACHE_MODE)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.testapp.tasks import database_session, prepared_statements

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


def prepared_claims(runs: int) -> list[list[tuple[str, int]]]:
    """The job claims prepared on the worker's connection, with their generic plans, after each of ``runs`` jobs."""
    results = []
    for _ in range(runs):
        job = prepared_statements.enqueue()
        job.wait(timeout=60)
        assert job.successful(), job.errors
        results.append([(sql, generic) for sql, generic in job.result if "published_at IS NOT NULL" in sql])
    return results


def test_a_worker_prepares_the_statements_it_runs_for_every_job(worker_process):
    worker_process(concurrency=1, TEST_CONN_MAX_AGE="300")
    claims = prepared_claims(7)  # psycopg prepares a statement once a connection has run it five times
    assert claims[0] == []
    assert claims[-1]


def test_a_worker_plans_its_job_claim_once_instead_of_for_every_job(worker_process):
    worker_process(concurrency=1, TEST_CONN_MAX_AGE="300")
    # Prepared on the fifth run; PostgreSQL plans the next five for their values, then compares.
    [(_, generic_plans)] = prepared_claims(14)[-1]
    assert generic_plans >= 1


def test_a_worker_plans_every_run_when_told_to(worker_process):
    worker_process(concurrency=1, TEST_CONN_MAX_AGE="300", DATABASE_WORKER_PLAN_CACHE_MODE="force_custom_plan")
    [(_, generic_plans)] = prepared_claims(14)[-1]
    assert generic_plans == 0


@pytest.mark.django_db
def test_a_prepared_statement_is_planned_for_the_values_of_each_run():
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_custom_plan"
