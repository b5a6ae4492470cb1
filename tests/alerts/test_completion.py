"""A one-off alert is completed when its last job ends, also when two of its jobs end at the same moment."""

from __future__ import annotations

import threading
from contextlib import nullcontext

import pytest
from django.db import connection, connections

from alerts import services
from alerts.models import AlertState
from scheduler.models import Job, State
from scheduler.tracked import registry
from tests.alerts.factories import AlertFactory, ContactFactory


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
