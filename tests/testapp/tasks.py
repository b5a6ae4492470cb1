"""Tracked tasks used by the tests; each records its body's runs in ``BodyRun``."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from django.db import connection

from scheduler.errors import RetryLater
from scheduler.models import Job
from scheduler.tracked import tracked_task
from tests.testapp.models import BodyRun


class ProviderDown(Exception):
    """Stands for a declared temporary error, such as a provider's 503."""


def _record(job) -> None:
    BodyRun.objects.create(job_id=job.id, attempt=job.attempt, pid=os.getpid())


@tracked_task(name="tests.echo")
def echo(job, value, *, suffix=""):
    _record(job)
    return {"echo": f"{value}{suffix}", "attempt": job.attempt}


@tracked_task(name="tests.flaky", max_attempts=3, retry_delay=timedelta(hours=1), retry_on=(ProviderDown,))
def flaky(job, succeed_on_attempt):
    _record(job)
    if job.attempt < succeed_on_attempt:
        raise ProviderDown(f"provider down on attempt {job.attempt}")
    return job.attempt


@tracked_task(name="tests.asks_for_a_delay", max_attempts=2, retry_delay=timedelta(hours=1))
def asks_for_a_delay(job, seconds):
    """The first attempt asks for the next one after ``seconds`` (a provider's ``Retry-After``); the next
    one finishes."""
    _record(job)
    if job.attempt == 1:
        raise RetryLater("provider busy", delay=timedelta(seconds=seconds))
    return job.attempt


@tracked_task(name="tests.broken", max_attempts=5, retry_on=(ProviderDown,))
def broken(job):
    _record(job)
    raise ValueError("invalid input: retrying cannot help")


@tracked_task(name="tests.no_longer_needed")
def no_longer_needed(job, reason):
    _record(job)
    job.abort(reason)


@tracked_task(name="tests.patient", max_attempts=2, retry_delay=timedelta(seconds=1))
def patient(job, seconds):
    """Works in small steps for up to ``seconds``, checking for cancellation between steps."""
    _record(job)
    deadline = time.monotonic() + seconds
    step = 0
    while time.monotonic() < deadline:
        job.check()
        step += 1
        job.progress(min(1.0, step / (seconds * 20)), f"step {step}")
        time.sleep(0.05)
    return step


@tracked_task(name="tests.stalls_first", max_attempts=2)
def stalls_first(job, seconds):
    """The first attempt works for ``seconds`` (long enough to be killed); later ones finish at once."""
    _record(job)
    if job.attempt == 1:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
    return job.attempt


def _hold_a_file(path: str, seconds: float) -> None:
    """Keep a file open for ``seconds``; what it says at the end shows whether clean-up ran."""
    with open(path, "w") as handle:
        handle.write("opened")
        handle.flush()
        try:
            time.sleep(seconds)
        finally:
            handle.write(", closed")


@tracked_task(name="tests.overruns", soft_time_limit=0.5)
def overruns(job, path):
    _record(job)
    _hold_a_file(path, 30)


@tracked_task(name="tests.holds_a_file", max_attempts=2, retry_delay=timedelta(seconds=0.5))
def holds_a_file(job, path, seconds):
    _record(job)
    if job.attempt == 1:
        _hold_a_file(path, seconds)
    return job.attempt


@tracked_task(name="tests.database_session")
def database_session(job):
    """The database server's process for this task's connection: the same one means a reused connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@tracked_task(name="tests.prepared_statements")
def prepared_statements(job):
    """The statements that this task's database connection has prepared, with the number of runs that used a
    generic plan (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans FROM pg_prepared_statements")
        return cursor.fetchall()


@tracked_task(name="tests.unsure")
def unsure(job, reason):
    """Ends without an error but not known to have done its work."""
    _record(job)
    job.summarize("done 0 of 1")
    job.needs_attention(reason)
    return {"done": 0}


def _seen_over(job_id: int) -> int:
    return 0 if Job.objects.get(pk=job_id).is_final else 1


@tracked_task(name="tests.updates_with_outcome")
def updates_with_outcome(job, then):
    """Marks its run, asks for the mark to become attempt 0 with its outcome and, once the outcome is
    committed, for a second mark (attempt 2) whose pid says whether it saw the job over (0) or not (1);
    then ``then``: returns, raises or aborts."""
    _record(job)
    job.update_with_outcome(BodyRun, {"job_id": job.id}, attempt=0)
    job.after_outcome(lambda: BodyRun.objects.create(job_id=job.id, attempt=2, pid=_seen_over(job.id)))
    if then == "raise":
        raise ValueError("the body failed after asking for an update with its outcome")
    if then == "abort":
        job.abort("no longer needed after asking for an update with its outcome")
    return "done"


@tracked_task(name="tests.tries_with_outcome")
def tries_with_outcome(job, then):
    """Marks its run and tries to make the mark attempt 0 with its outcome, or else, once the outcome is
    committed, adds a mark (attempt 3) whose pid says whether it saw the job over (0) or not (1); a last
    check marks attempt 2. ``then``: "change" returns, "miss" returns after trying an update that changes
    no row, "abort" aborts."""
    _record(job)
    job.try_with_outcome(
        f"UPDATE {BodyRun._meta.db_table} SET attempt = 0 WHERE job_id = %s AND attempt = %s",
        [job.id, job.attempt if then != "miss" else -1],
        otherwise=lambda: BodyRun.objects.create(job_id=job.id, attempt=3, pid=_seen_over(job.id)),
    )
    job.after_outcome(lambda: BodyRun.objects.create(job_id=job.id, attempt=2, pid=os.getpid()))
    if then == "abort":
        job.abort("no longer needed after trying an update with its outcome")
    return "done"


@tracked_task(name="tests.records_with_outcome")
def records_with_outcome(job, then_raise):
    """Leaves a row to be written with its outcome (attempt 0 marks it), then returns or raises."""
    job.record_with_outcome(lambda: BodyRun.objects.create(job_id=job.id, attempt=0, pid=os.getpid()))
    if then_raise:
        raise ValueError("the body failed after asking for a write with its outcome")
    return "done"


@tracked_task(name="tests.returns_a_set")
def returns_a_set(job):
    """Does its work (a record written with its outcome, a summary), then returns what JSON cannot hold."""
    _record(job)
    job.record_with_outcome(lambda: BodyRun.objects.create(job_id=job.id, attempt=0, pid=os.getpid()))
    job.summarize("sent 2 of 2")
    return {"sent": 2, "to": {2, 1}}
