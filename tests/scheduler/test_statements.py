"""Written-out statements do what the ORM's would: the same rows changed, the same values stored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import F
from django.utils import timezone

from scheduler.models import Job, State
from scheduler.statements import columns, from_row, insert_params, insert_sql, plain_update_sql, update_each_sql
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

STORED = ["state", "modified_at", "runtime", "lease_expires_at", "result", "errors", "progress", "status_message"]


def _stored(job: Job) -> dict:
    job.refresh_from_db()
    return {name: getattr(job, name) for name in STORED}


def test_a_written_out_update_stores_what_the_querysets_update_stores():
    now = timezone.now()
    values = {
        "state": State.SUCCEEDED, "modified_at": now, "runtime": timedelta(seconds=1.5), "lease_expires_at": None,
        "result": {"sent": 1, "text": "né"}, "errors": [{"error": "x"}], "progress": 1.0, "status_message": "ok",
    }  # fmt: skip
    written, compiled, bystander = (JobFactory(state=State.RUNNING, celery_task_id="t") for _ in range(3))
    statement, params = plain_update_sql(
        Job, {"pk": written.pk, "state__in": (State.RUNNING, State.QUEUED), "celery_task_id": "t"}, values
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        assert cursor.rowcount == 1
    Job.objects.filter(pk=compiled.pk, state__in=(State.RUNNING, State.QUEUED), celery_task_id="t").update(**values)
    assert _stored(written) == _stored(compiled)
    assert _stored(written)["result"] == {"sent": 1, "text": "né"}
    assert _stored(bystander)["state"] == State.RUNNING


def test_a_written_out_update_changes_nothing_when_its_conditions_do_not_hold():
    job = JobFactory(state=State.RUNNING, celery_task_id="a later attempt")
    statement, params = plain_update_sql(
        Job, {"pk": job.pk, "state__in": (State.RUNNING,), "celery_task_id": "t"}, {"state": State.SUCCEEDED}
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        assert cursor.rowcount == 0
    assert _stored(job)["state"] == State.RUNNING


@pytest.mark.parametrize(
    ("filters", "values"),
    [
        ({"pk": 1}, {"attempts": F("attempts") + 1}),
        ({"pk": 1, "published_at__isnull": False}, {"state": State.RUNNING}),
        ({"pk": 1, "state__in": ()}, {"state": State.RUNNING}),
        ({"pk": None}, {"state": State.RUNNING}),
        ({"pk": 1, "target_type": ContentType(pk=1)}, {"state": State.RUNNING}),
        ({"pk": F("id")}, {"state": State.RUNNING}),
    ],
)
def test_what_is_not_plain_is_left_to_the_orm(filters, values):
    assert plain_update_sql(Job, filters, values) is None


def test_an_inserted_row_reads_back_as_the_orm_saves_it():
    job = JobFactory.build(args=[1, "two"], kwargs={"x": None}, retry_delay=timedelta(hours=1), unique_key="k")
    with connection.cursor() as cursor:
        cursor.execute(insert_sql(Job, connection.alias), insert_params(job))
        job_id = cursor.fetchone()[0]
        cursor.execute(insert_sql(Job, connection.alias), insert_params(JobFactory.build(unique_key="k")))
        assert cursor.fetchone() is None
    stored = Job.objects.get(pk=job_id)
    assert (stored.args, stored.kwargs, stored.retry_delay) == ([1, "two"], {"x": None}, timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns(Job, connection.alias)} FROM {Job._meta.db_table} WHERE id = %s", [job_id])
        read = from_row(Job, cursor.fetchone())
    assert {f.attname: getattr(read, f.attname) for f in Job._meta.concrete_fields} == {
        f.attname: getattr(stored, f.attname) for f in Job._meta.concrete_fields
    }


@pytest.mark.only_on("postgresql")
def test_an_update_of_each_row_gives_each_its_own_value_and_leaves_the_others():
    later = timezone.now() + timedelta(hours=1)
    soon, cleared, bystander = (JobFactory(lease_expires_at=timezone.now()) for _ in range(3))
    with connection.cursor() as cursor:
        cursor.execute(*update_each_sql(Job, "lease_expires_at", {soon.pk: later, cleared.pk: None}))
        assert cursor.rowcount == 2
    assert Job.objects.get(pk=soon.pk).lease_expires_at == later
    assert Job.objects.get(pk=cleared.pk).lease_expires_at is None
    assert Job.objects.get(pk=bystander.pk).lease_expires_at == bystander.lease_expires_at


@pytest.mark.only_on("postgresql")
def test_an_update_of_each_row_types_a_list_that_holds_only_nulls():
    job = JobFactory(lease_expires_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(*update_each_sql(Job, "lease_expires_at", {job.pk: None}))
    assert Job.objects.get(pk=job.pk).lease_expires_at is None
