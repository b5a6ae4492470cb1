"""Publishing to a real broker, with no worker consuming, so the queue itself can be inspected."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler import publishing
from scheduler.models import EventKind, Job, State
from tests.conftest import broker_down, purge_queues, queue_size
from tests.testapp.tasks import echo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_queues(broker):
    purge_queues()
    yield
    purge_queues()


def sent_events(job: Job) -> int:
    return job.events.filter(kind=EventKind.SENT).count()


def test_a_job_due_now_is_written_then_published(broker):
    job = echo.enqueue("hi")
    job.refresh_from_db()
    assert job.state == State.QUEUED
    assert job.published_at is not None and job.celery_task_id
    assert [e.kind for e in job.events.all()] == ["scheduled", "sent"]
    assert queue_size("default") == 1


def test_a_job_beyond_the_horizon_waits_in_the_database(broker, settings):
    job = echo.enqueue_with(args=["later"], eta=timezone.now() + settings.JOB_ETA_HORIZON + timedelta(seconds=5))
    job.refresh_from_db()
    assert job.state == State.SCHEDULED
    assert job.published_at is None
    assert queue_size("default") == 0


def test_publishing_waits_for_the_commit(broker):
    with transaction.atomic():
        job = echo.enqueue("inside a transaction")
        # The row is written already marked for publishing; the message leaves only once it is committed.
        assert Job.objects.get(pk=job.pk).state == State.QUEUED
        assert queue_size("default") == 0
    assert queue_size("default") == 1
    assert sent_events(job) == 1


def test_a_rolled_back_transaction_publishes_nothing(broker):
    with pytest.raises(RuntimeError), transaction.atomic():
        echo.enqueue("doomed")
        raise RuntimeError("the request failed")
    assert not Job.objects.exists()
    assert queue_size("default") == 0


def test_the_dispatcher_publishes_jobs_as_they_come_within_the_horizon(broker, settings):
    eta = timezone.now() + timedelta(days=2)
    job = echo.enqueue_with(args=["in two days"], eta=eta)
    assert publishing.dispatch_due() == 0
    with time_machine.travel(eta - settings.JOB_ETA_HORIZON - timedelta(seconds=1)):
        assert publishing.dispatch_due() == 0
    with time_machine.travel(eta - settings.JOB_ETA_HORIZON + timedelta(seconds=1)):
        assert publishing.dispatch_due() == 1
        assert publishing.dispatch_due() == 0
    job.refresh_from_db()
    assert job.state == State.QUEUED
    assert queue_size("default") == 1
    assert sent_events(job) == 1


def test_two_dispatchers_at_once_publish_each_job_exactly_once(broker):
    eta = timezone.now() + timedelta(days=1)
    jobs = [echo.enqueue_with(args=[n], eta=eta) for n in range(40)]
    start = threading.Barrier(2)
    sent: list[int] = []

    def dispatcher() -> None:
        try:
            start.wait()
            with time_machine.travel(eta):
                sent.append(publishing.dispatch_due(limit=1000))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sent) == 40
    assert queue_size("default") == 40
    assert [sent_events(job) for job in jobs] == [1] * 40


def test_the_same_work_enqueued_twice_is_one_job(broker):
    first = echo.enqueue_with(args=["once"], unique_key="occurrence:7:2026-11-21T10:00Z")
    second = echo.enqueue_with(args=["once"], unique_key="occurrence:7:2026-11-21T10:00Z")
    assert first.pk == second.pk
    assert Job.objects.count() == 1
    assert queue_size("default") == 1


def test_work_enqueued_again_inside_a_transaction_leaves_it_usable_and_writes_no_second_timeline(broker):
    with transaction.atomic():
        first = echo.enqueue_with(args=["once"], unique_key="occurrence:8:sms")
        again = echo.enqueue_with(args=["once"], unique_key="occurrence:8:sms")
        other = echo.enqueue_with(args=["other"], unique_key="occurrence:9:sms")
    assert first.pk == again.pk != other.pk
    for job in (first, other):
        assert [e.kind for e in job.events.order_by("pk")] == ["scheduled", "sent"]
    assert queue_size("default") == 2


def test_a_job_and_its_timeline_are_written_in_one_statement_on_postgresql(broker):
    with CaptureQueriesContext(connection) as statements:
        job = echo.enqueue_with(args=["one"], unique_key="occurrence:10:sms")
    transaction_control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT")
    writes = [s["sql"] for s in statements if not s["sql"].startswith(transaction_control)]
    assert len(writes) == (1 if connection.vendor == "postgresql" else 2), writes
    assert [e.kind for e in job.events.order_by("pk")] == ["scheduled", "sent"]
    assert queue_size("default") == 1


def test_many_jobs_are_written_in_as_many_statements_as_three_and_each_is_published(broker):
    def enqueue(count: int, prefix: str) -> tuple[list[Job], int]:
        with CaptureQueriesContext(connection) as statements:
            jobs = echo.enqueue_many([{"args": [i], "unique_key": f"{prefix}:{i}"} for i in range(count)])
        return jobs, len(statements)

    few, few_statements = enqueue(3, "few")
    many, many_statements = enqueue(30, "many")

    assert many_statements == few_statements
    assert [job.args for job in many] == [[i] for i in range(30)]
    assert queue_size("default") == 33
    for job in Job.objects.all():
        assert [e.kind for e in job.events.all()] == ["scheduled", "sent"] and job.state == State.QUEUED


def test_enqueueing_many_returns_the_existing_job_for_a_key_that_exists(broker):
    first = echo.enqueue_with(args=["once"], unique_key="share:1")
    jobs = echo.enqueue_many([{"args": ["once"], "unique_key": "share:1"}, {"args": ["two"], "unique_key": "share:2"}])
    assert jobs[0].pk == first.pk and jobs[1].args == ["two"]
    assert Job.objects.count() == 2
    assert queue_size("default") == 2


def test_a_failed_publish_puts_the_job_back_for_the_dispatcher(broker):
    with broker_down():
        job = echo.enqueue("broker down")
    job.refresh_from_db()
    assert job.state == State.SCHEDULED
    assert job.published_at is None
    assert job.status_message.startswith("publishing failed, will try again")
    assert publishing.dispatch_due() == 1
    assert queue_size("default") == 1


def test_arguments_must_be_json_values():
    with pytest.raises(TypeError, match="arguments of tests.echo must be JSON values"):
        echo.enqueue(object())
    assert not Job.objects.exists()


def test_eta_and_delay_together_are_refused():
    with pytest.raises(ValueError, match="eta or delay"):
        echo.enqueue_with(args=["x"], eta=timezone.now(), delay=timedelta(seconds=1))
