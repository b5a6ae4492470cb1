from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler.errors import JobCancelled
from scheduler.execution import JobContext
from scheduler.lifecycle import (
    TRANSITIONS,
    IllegalTransition,
    RowsUpdate,
    cancel_all,
    check_transition,
    claim,
    succeed,
    transition,
)
from scheduler.models import FINAL_STATES, EventKind, Job, JobEvent, State
from scheduler.selectors import JobFilters, jobs_page
from scheduler.services import job_cancel, job_retry_aborted
from tests.factories import JobFactory
from tests.testapp.tasks import echo

LEGAL = [(source, target) for source, targets in TRANSITIONS.items() for target in targets]
ILLEGAL = [(source, target) for source in State for target in State if target not in TRANSITIONS[source]]


def test_every_state_has_a_rule():
    assert set(TRANSITIONS) == set(State)


def test_final_states_lead_nowhere_except_to_a_retry_a_resend_or_a_settle():
    for state in FINAL_STATES - {State.FAILED, State.ATTENTION, State.ABORTED}:
        assert TRANSITIONS[state] == frozenset()
    assert TRANSITIONS[State.FAILED] == TRANSITIONS[State.ABORTED] == {State.SCHEDULED}
    assert TRANSITIONS[State.ATTENTION] == {State.SCHEDULED, State.SUCCEEDED}


@pytest.mark.django_db
@pytest.mark.parametrize("source, target", LEGAL)
def test_each_legal_transition_changes_the_row_and_appends_an_event(source, target):
    job = JobFactory(state=source)
    assert transition(job.pk, sources=[source], target=target, event=EventKind.SENT, hostname="w1", message="m")
    job.refresh_from_db()
    assert job.state == target
    event = job.events.get()
    assert (event.kind, event.hostname, event.message) == ("sent", "w1", "m")


@pytest.mark.parametrize("source, target", ILLEGAL)
def test_each_illegal_transition_raises(source, target):
    with pytest.raises(IllegalTransition, match=f"from {source} to {target}"):
        check_transition([source], target)


@pytest.mark.django_db
def test_an_illegal_transition_changes_nothing():
    job = JobFactory(state=State.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        transition(job.pk, sources=[State.SUCCEEDED], target=State.RUNNING, event=EventKind.STARTED)
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED
    assert not job.events.exists()


@pytest.mark.django_db
def test_a_transition_from_a_state_the_job_is_no_longer_in_is_refused_without_an_event():
    job = JobFactory(state=State.CANCELLED)
    claimed = transition(job.pk, sources=[State.QUEUED], target=State.RUNNING, event=EventKind.STARTED)
    assert claimed is False
    assert Job.objects.get(pk=job.pk).state == State.CANCELLED
    assert not job.events.exists()


@pytest.mark.django_db
def test_extra_conditions_guard_the_update():
    job = JobFactory(state=State.QUEUED, celery_task_id="current")
    stale = transition(
        job.pk,
        sources=[State.QUEUED],
        target=State.RUNNING,
        event=EventKind.STARTED,
        when={"celery_task_id": "earlier"},
    )
    assert stale is False
    assert Job.objects.get(pk=job.pk).state == State.QUEUED


@pytest.mark.django_db
@pytest.mark.parametrize("source", [State.QUEUED, State.RETRYING])
def test_a_claim_returns_the_running_job_with_its_started_event_once_and_only_for_its_message(source):
    job = JobFactory(state=source, celery_task_id="current", published_at=timezone.now(), attempts=1)
    assert claim(job.pk, task_id="earlier", hostname="w1", lease=timedelta(minutes=5)) is None
    claimed = claim(job.pk, task_id="current", hostname="w1", lease=timedelta(minutes=5))
    assert claimed is not None and claimed.pk == job.pk
    assert (claimed.state, claimed.attempts, claimed.worker) == (State.RUNNING, 2, "w1")
    assert claimed.lease_expires_at - claimed.started_at == timedelta(minutes=5)
    assert claimed == Job.objects.get(pk=job.pk) and claimed.args == job.args
    assert list(job.events.values_list("kind", "hostname")) == [(EventKind.STARTED, "w1")]
    assert claim(job.pk, task_id="current", hostname="w2", lease=timedelta(minutes=5)) is None, "claimed twice"
    assert job.events.count() == 1


@pytest.mark.django_db
def test_an_outcome_writes_other_rows_with_it_in_one_statement_on_postgresql_and_says_what_each_changed():
    job = JobFactory(state=State.RUNNING, celery_task_id="current")
    other = JobFactory(state=State.RUNNING, celery_task_id="other", status_message="before")
    seen = [JobFactory(state=State.SUCCEEDED).pk for _ in range(2)]
    updates = [
        RowsUpdate(Job, {"pk": other.pk}, {"status_message": "written with the outcome"}),
        RowsUpdate(sql='UPDATE "scheduler_job" SET "status_message" = %s WHERE "id" = %s', params=["none", -1]),
        RowsUpdate(sql='UPDATE "scheduler_job" SET "seen" = %s WHERE "id" IN (%s, %s)', params=[True, *seen]),
    ]
    with CaptureQueriesContext(connection) as statements:
        recorded = succeed(job.pk, task_id="current", hostname="w1", result=None, runtime=0.1, with_updates=updates)
    assert recorded and Job.objects.get(pk=job.pk).state == State.SUCCEEDED
    assert Job.objects.get(pk=other.pk).status_message == "written with the outcome"
    assert [update.changed for update in updates] == [1, 0, 2]
    assert set(Job.objects.filter(pk__in=seen).values_list("seen", flat=True)) == {True}
    writes = [q["sql"] for q in statements.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(writes) == (1 if connection.vendor == "postgresql" else 5), writes
    assert list(job.events.values_list("kind", flat=True)) == [EventKind.SUCCEEDED]


@pytest.mark.django_db
def test_the_other_rows_are_written_even_when_the_attempt_no_longer_owns_the_job():
    job = JobFactory(state=State.RUNNING, celery_task_id="a later attempt")
    other = JobFactory(state=State.RUNNING, celery_task_id="other")
    recorded = succeed(
        job.pk, task_id="current", hostname="w1", result=None, runtime=0.1,
        with_updates=[RowsUpdate(Job, {"pk": other.pk}, {"status_message": "sent all the same"})],
    )  # fmt: skip
    assert recorded is False and Job.objects.get(pk=job.pk).state == State.RUNNING
    assert Job.objects.get(pk=other.pk).status_message == "sent all the same"


@pytest.mark.django_db
def test_an_unpublished_job_cannot_be_claimed():
    job = JobFactory(state=State.QUEUED, celery_task_id="current", published_at=None)
    assert claim(job.pk, task_id="current", hostname="w1", lease=timedelta(minutes=5)) is None
    assert Job.objects.get(pk=job.pk).state == State.QUEUED and not job.events.exists()


@pytest.mark.django_db
def test_cancel_all_cancels_every_active_job_with_one_event_each_and_names_the_messages_to_revoke():
    now = timezone.now()
    waiting = JobFactory(state=State.SCHEDULED)
    queued = JobFactory(state=State.QUEUED, celery_task_id="t-queued", published_at=now)
    running = JobFactory(
        state=State.RUNNING, celery_task_id="t-running", published_at=now, lease_expires_at=now + timedelta(minutes=5)
    )
    done = JobFactory(state=State.SUCCEEDED, celery_task_id="t-done", published_at=now)

    count, task_ids = cancel_all(reason="stop everything")

    assert count == 3
    assert sorted(task_ids) == ["t-queued", "t-running"]
    for job in (waiting, queued, running):
        job.refresh_from_db()
        assert (job.state, job.status_message, job.lease_expires_at) == (State.CANCELLED, "stop everything", None)
        assert job.finished_at is not None
        assert list(job.events.values_list("kind", "message")) == [(EventKind.CANCELLED, "stop everything")]
    done.refresh_from_db()
    assert done.state == State.SUCCEEDED and not done.events.exists()
    assert cancel_all(reason="again") == (0, [])


@pytest.mark.django_db
def test_cancel_all_writes_its_times_as_the_orm_does_so_that_filters_and_the_job_list_find_every_job():
    now = timezone.now()
    jobs = {JobFactory(state=State.QUEUED, celery_task_id=f"t{i}", published_at=now).pk for i in range(3)}

    cancel_all(reason="stop everything", now=now)

    assert set(Job.objects.filter(modified_at=now, finished_at=now).values_list("pk", flat=True)) == jobs
    assert set(Job.objects.filter(modified_at__lte=now).values_list("pk", flat=True)) == jobs
    assert set(JobEvent.objects.filter(at=now).values_list("job_id", flat=True)) == jobs
    page = jobs_page(JobFilters(), size=1)
    listed = page.ids
    while page.next_cursor is not None:
        page = jobs_page(JobFilters(), after=page.next_cursor, size=1)
        listed += page.ids
    assert sorted(listed) == sorted(jobs), "paging the list by (modified_at, id) skipped cancelled jobs"


@pytest.mark.django_db
def test_cancel_all_of_one_target_leaves_the_other_targets_jobs_alone():
    now, kind = timezone.now(), ContentType.objects.get_for_model(Job).pk
    mine = [JobFactory(state=State.QUEUED, target_type_id=kind, target_id="1", celery_task_id=f"t{i}", published_at=now)
            for i in range(3)]  # fmt: skip
    other = JobFactory(
        state=State.QUEUED, target_type_id=kind, target_id="10", celery_task_id="t-other", published_at=now
    )
    untargeted = JobFactory(state=State.SCHEDULED)

    count, task_ids = cancel_all(reason="the alert was cancelled", target=(kind, "1"))

    assert (count, sorted(task_ids)) == (3, ["t0", "t1", "t2"])
    assert {job.state for job in Job.objects.filter(pk__in=[j.pk for j in mine])} == {State.CANCELLED}
    assert [Job.objects.get(pk=j.pk).state for j in (other, untargeted)] == [State.QUEUED, State.SCHEDULED]


@pytest.mark.django_db
def test_reporting_progress_is_an_abort_check_for_a_job_cancelled_meanwhile():
    job = JobFactory(state=State.QUEUED, published_at=timezone.now(), celery_task_id="message-1")
    running = claim(job.pk, task_id="message-1", hostname="w1", lease=timedelta(minutes=5))
    context = JobContext(running, hostname="w1", task_id="message-1", lease=timedelta(minutes=5))
    context.progress(0.5, "halfway")
    assert Job.objects.get(pk=job.pk).status_message == "halfway"

    assert job_cancel(job_id=job.pk)
    with pytest.raises(JobCancelled):
        context.progress(0.6, "further")


@pytest.mark.django_db
def test_a_job_cancelled_with_its_key_released_lets_the_same_work_be_enqueued_again():
    eta = timezone.now() + timedelta(days=1)
    first = echo.enqueue_with(args=["once"], eta=eta, unique_key="the work")
    assert job_cancel(job_id=first.pk, reason="the plan changed", release_key=True)
    again = echo.enqueue_with(args=["once"], eta=eta, unique_key="the work")

    first.refresh_from_db()
    assert (first.state, first.unique_key) == (State.CANCELLED, None)
    assert again.pk != first.pk and again.state == State.SCHEDULED
    assert echo.enqueue_with(args=["once"], eta=eta, unique_key="the work").pk == again.pk


@pytest.mark.django_db
def test_a_job_cancelled_without_releasing_its_key_is_what_the_same_work_finds():
    job = echo.enqueue_with(args=["once"], eta=timezone.now() + timedelta(days=1), unique_key="the work")
    assert job_cancel(job_id=job.pk)
    assert echo.enqueue_with(args=["once"], unique_key="the work").pk == job.pk


@pytest.mark.django_db
def test_an_aborted_job_given_another_attempt_keeps_the_attempts_it_had_left_and_waits_for_its_time():
    tomorrow = timezone.now() + timedelta(days=1)
    job = JobFactory(state=State.ABORTED, attempts=2, max_attempts=5)  # one failed, one called off
    assert job_retry_aborted(job_id=job.pk, reason="its alert was resumed", eta=tomorrow)
    job.refresh_from_db()
    assert (job.state, job.eta, job.max_attempts - job.attempts) == (State.SCHEDULED, tomorrow, 4)
    assert job.events.get().message == "its alert was resumed"


@pytest.mark.django_db
def test_only_an_aborted_job_is_given_another_attempt_for_its_owner():
    cancelled = JobFactory(state=State.CANCELLED)
    assert not job_retry_aborted(job_id=cancelled.pk, reason="its alert was resumed")
    assert Job.objects.get(pk=cancelled.pk).state == State.CANCELLED
