"""A one-off alert is completed when its last job ends, also when two of its jobs end at the same moment; a job
added to it meanwhile (send now, a fallback) still delivers."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from alerts import channel_health, services
from alerts.models import Alert, AlertState, Delivery, DeliveryState
from scheduler.models import ACTIVE_STATES, Job, State
from scheduler.services import job_run_now
from scheduler.tracked import registry
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.conftest import wait_until


def run_in_thread(job: Job, *, wrapper=None) -> threading.Thread:
    """Run ``job``'s attempt as a worker thread would, on a connection of its own."""

    def attempt() -> None:
        task = registry[job.task_name].celery_task
        try:
            with connection.execute_wrapper(wrapper) if wrapper else nullcontext():
                # Celery runs the task here, as a worker would with this message's task id.
                task.apply(args=[job.pk], task_id=job.celery_task_id, throw=True)
        finally:
            connections.close_all()

    thread = threading.Thread(target=attempt)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_two_jobs_of_an_alert_ending_together_complete_it(fake_twilio, settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert = AlertFactory(recipients=[ContactFactory(email="ada@example.com")], send_email=True)
    services.alert_send_now(alert=alert)
    sms_job = Job.objects.get(task_name="alerts.deliver_sms")
    email_job = Job.objects.get(task_name="alerts.deliver_email")
    sms_outcome_written, email_job_over = threading.Event(), threading.Event()

    def hold_after_the_sms_outcome(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if '"scheduler_job"' in sql and State.SUCCEEDED in (params or ()):
            sms_outcome_written.set()
            # PostgreSQL: the SMS job's success is written, not yet seen by others; the email job ends
            # meanwhile. (SQLite writes one transaction at a time: the email job would wait for this one.)
            if connection.vendor == "postgresql":
                assert email_job_over.wait(timeout=30)
        return result

    sms_thread = run_in_thread(sms_job, wrapper=hold_after_the_sms_outcome)
    assert sms_outcome_written.wait(timeout=30)
    email_thread = run_in_thread(email_job)
    email_thread.join(timeout=30)
    email_job_over.set()
    sms_thread.join(timeout=30)

    assert set(Job.objects.values_list("state", flat=True)) == {State.SUCCEEDED}
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_the_last_job_of_a_one_off_alert_completes_it_with_its_outcome_not_in_a_statement_after_it(
    fake_twilio, settings
):
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    alert = AlertFactory()
    services.alert_send_now(alert=alert)
    job = Job.objects.get()
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    run_in_thread(job, wrapper=record).join(timeout=30)

    alert.refresh_from_db()
    assert (Job.objects.get().state, alert.state) == (State.SUCCEEDED, AlertState.COMPLETED)
    outcome = max(i for i, sql in enumerate(statements) if 'UPDATE "scheduler_job"' in sql)
    assert not [sql for sql in statements[outcome + 1 :] if '"alerts_alert"' in sql], "a round trip of its own"
    if connection.vendor == "postgresql":
        assert '"alerts_alert"' in statements[outcome], "the completion is in the outcome's statement"


@pytest.mark.django_db(transaction=True)
def test_a_job_given_another_attempt_while_it_ran_keeps_its_one_off_alert_active(fake_twilio, settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    alert = AlertFactory()
    services.alert_send_now(alert=alert)
    job = Job.objects.get()

    def rescue_just_before_the_outcome(execute, sql, params, many, context):
        # The outcome's first write (its statement on PostgreSQL; on SQLite, its transaction's first).
        if 'UPDATE "alerts_delivery"' in sql and DeliveryState.SENT in (params or ()):
            # As the sweep does for an attempt whose lease ran out: the job waits for its next attempt.
            Job.objects.filter(pk=job.pk).update(state=State.RETRYING, celery_task_id="the next attempt")
        return execute(sql, params, many, context)

    run_in_thread(job, wrapper=rescue_just_before_the_outcome).join(timeout=30)

    alert.refresh_from_db()
    assert (Job.objects.get().state, alert.state) == (State.RETRYING, AlertState.ACTIVE)


@pytest.mark.django_db(transaction=True)
def test_the_last_jobs_outcome_does_not_wait_for_a_lock_on_its_alert_and_completes_it_once_free(fake_twilio, settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks: a writer holds the whole database")
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    alert = AlertFactory()
    services.alert_send_now(alert=alert)
    job = Job.objects.get()
    locked, release = threading.Event(), threading.Event()

    def hold_the_alerts_row() -> None:
        # As an edit or a cancel of the alert does, which then waits for the alert's jobs.
        try:
            with transaction.atomic():
                Alert.objects.select_for_update().get(pk=alert.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_alerts_row)
    holder.start()
    assert locked.wait(timeout=30)
    try:
        attempt = run_in_thread(job)
        wait_until(lambda: Job.objects.get(pk=job.pk).state == State.SUCCEEDED, what="the outcome, the alert held")
        assert Alert.objects.get(pk=alert.pk).state == AlertState.ACTIVE
    finally:
        release.set()
    holder.join(timeout=30)
    attempt.join(timeout=30)
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED, "completed after the outcome's commit, once the row was free"


def send_now(alert: Alert) -> None:
    services.alert_send_now(alert=Alert.objects.get(pk=alert.pk))


def fall_back_to_email(alert: Alert) -> None:
    channel_health.delivery_fall_back(delivery=Delivery.objects.get(channel="sms"), reason="a late refusal")


def release_once_blocked_or_over(over: threading.Event, release: threading.Event) -> None:
    """Set ``release`` once ``over`` is set or a statement of this database waits for a row lock."""
    try:
        with connection.cursor() as cursor:
            while not over.wait(timeout=0.05):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                               " AND wait_event_type = 'Lock'")  # fmt: skip
                if cursor.fetchone()[0]:
                    break
    finally:
        release.set()
        connections.close_all()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("add_a_job", [send_now, fall_back_to_email])
def test_a_job_added_while_the_last_one_completes_the_alert_still_delivers(add_a_job, fake_twilio, settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite writes one transaction at a time: a completion cannot overlap a send now there")
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert = AlertFactory(recipients=[ContactFactory(email="ada@example.com")], fallback_to_other_channel=True)
    occurrence = services.alert_send_now(alert=alert)
    [first] = Job.objects.all()
    Delivery.objects.create(occurrence=occurrence, contact=alert.recipients.get(), channel="sms",
                            address="+14155550100", state=DeliveryState.FAILED, job_id=first.pk)  # fmt: skip
    # The alert's only job has ended; its completion is next.
    Job.objects.filter(pk=first.pk).update(state=State.SUCCEEDED)
    job_written, release, completion_over = threading.Event(), threading.Event(), threading.Event()

    def hold_before_commit(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if 'INSERT INTO "scheduler_job"' in sql:
            job_written.set()
            release.wait(timeout=30)
        return result

    def add() -> None:
        try:
            with connection.execute_wrapper(hold_before_commit):
                add_a_job(alert)
        finally:
            connections.close_all()

    def complete() -> None:
        try:
            services.alert_complete_if_done(alert=alert)
        finally:
            completion_over.set()
            connections.close_all()

    adder = threading.Thread(target=add)
    adder.start()
    assert job_written.wait(timeout=30)
    # The completion starts while the new job is not committed: it waits for the alert's lock (send now)
    # or ends at once (a fallback), and then the job is committed.
    threads = [threading.Thread(target=complete),
               threading.Thread(target=release_once_blocked_or_over, args=(completion_over, release))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in [adder, *threads]:
        thread.join(timeout=30)
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED, "the completion saw the new job: the race did not happen"

    [added] = Job.objects.filter(state__in=ACTIVE_STATES)
    run_in_thread(added).join(timeout=30)

    added.refresh_from_db()
    assert added.state == State.SUCCEEDED, (added.state, added.status_message)
    assert Delivery.objects.filter(job_id=added.pk, state=DeliveryState.SENT).count() == 1
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_send_now_of_an_alert_completed_since_it_was_read_sends_it(settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    alert = AlertFactory()
    services.alert_send_now(alert=alert)
    Job.objects.update(state=State.SUCCEEDED)
    read_while_active = Alert.objects.get(pk=alert.pk)
    assert services.alert_complete_if_done(alert=alert)

    services.alert_send_now(alert=read_while_active)

    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE
    assert Job.objects.filter(state__in=ACTIVE_STATES).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_of_a_completed_alert_that_expired_meanwhile_aborts_and_leaves_it_completed(fake_twilio, settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    alert = AlertFactory()
    services.alert_send_now(alert=alert)
    [job] = Job.objects.all()
    Alert.objects.filter(pk=alert.pk).update(state=AlertState.COMPLETED, expires_at=timezone.now())

    run_in_thread(job).join(timeout=30)

    job.refresh_from_db()
    assert job.state == State.ABORTED and "expired" in job.status_message
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED
    assert fake_twilio.messages == []


@pytest.mark.django_db(transaction=True)
def test_run_again_of_a_failed_job_of_a_completed_alert_delivers_it_and_completes_the_alert_again(
    fake_twilio, settings
):
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert = AlertFactory(recipients=[ContactFactory(email="ada@example.com")], send_email=True, max_attempts=1)
    services.alert_send_now(alert=alert)
    sms_job = Job.objects.get(task_name="alerts.deliver_sms")
    fake_twilio.fail_next(status=503)
    run_in_thread(sms_job).join(timeout=30)
    run_in_thread(Job.objects.get(task_name="alerts.deliver_email")).join(timeout=30)
    sms_job.refresh_from_db()
    alert.refresh_from_db()
    assert (sms_job.state, alert.state) == (State.FAILED, AlertState.COMPLETED)

    assert job_run_now(job_id=sms_job.pk)  # an operator's "run again"
    sms_job.refresh_from_db()
    run_in_thread(sms_job).join(timeout=30)

    sms_job.refresh_from_db()
    assert sms_job.state == State.SUCCEEDED, sms_job.status_message
    assert len(fake_twilio.messages) == 1
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_a_job_that_read_its_one_off_paused_runs_again_when_a_resume_came_before_its_abort_was_written(
    fake_twilio, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite writes one transaction at a time: the abort's holds the database from its first write")
    settings.SMS_PER_SECOND_PER_NUMBER = 0
    alert = AlertFactory(send_at=timezone.now() + timedelta(days=1))
    services.alert_schedule_sync(alert=alert)
    services.alert_pause(alert=alert)
    job_run_now(job_id=Job.objects.get().pk)
    about_to_abort, resumed = threading.Event(), threading.Event()

    def resume_before_the_abort_is_written(execute, sql, params, many, context):
        if '"scheduler_job"' in sql and State.ABORTED in (params or ()):
            # The body read the alert paused; the resume commits now, and finds this job still running.
            about_to_abort.set()
            assert resumed.wait(timeout=30)
        return execute(sql, params, many, context)

    attempt = run_in_thread(Job.objects.get(), wrapper=resume_before_the_abort_is_written)
    assert about_to_abort.wait(timeout=30)
    try:
        services.alert_resume(alert=Alert.objects.get(pk=alert.pk))
        assert Job.objects.get().state == State.RUNNING
    finally:
        resumed.set()
    attempt.join(timeout=30)

    job = Job.objects.get()
    assert job.state == State.QUEUED, "given another attempt, not left aborted"
    assert Alert.objects.get(pk=alert.pk).state == AlertState.ACTIVE
    run_in_thread(job).join(timeout=30)
    assert Job.objects.get().state == State.SUCCEEDED
    assert len(fake_twilio.messages) == 1
    assert Alert.objects.get(pk=alert.pk).state == AlertState.COMPLETED
