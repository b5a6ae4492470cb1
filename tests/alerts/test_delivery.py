"""Alerts delivered by a real worker on each broker, to a real local Twilio-speaking server and SMTP server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import F
from django.utils import timezone

from alerts import services
from alerts.channels import sms_channel
from alerts.models import Alert, AlertState, Delivery, DeliveryState, Occurrence, ScheduleKind, SmsSinkMessage
from alerts.planner import alerts_plan_due, occurrence_enqueue
from scheduler import publishing
from scheduler.models import ACTIVE_STATES, EventKind, Job, State
from scheduler.services import job_cancel, job_run_now
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture(autouse=True)
def fast_sms_rate(settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 1000


def only_job(**filters) -> Job:
    return Job.objects.get(**filters)


def test_a_once_alert_arrives_at_its_time_exactly_once(fake_twilio):
    contact = ContactFactory(name="Ada", phone="+14155550100")
    alert = AlertFactory(recipients=[contact], send_at=timezone.now() + timedelta(seconds=1.5), name="Boiler")
    services.alert_schedule_sync(alert=alert)
    job = only_job().wait(timeout=30)

    assert job.state == State.SUCCEEDED, job.errors
    [message] = fake_twilio.messages
    assert message.to == "+14155550100" and message.from_ == "+15005550006"
    assert message.body.startswith("Hi Ada, Boiler needs you.") and "/alerts/ack/" in message.body
    assert message.status_callback.endswith("/alerts/twilio/status")
    assert message.received_at >= alert.send_at.timestamp(), "never early"
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.provider_id, delivery.attempts) == (DeliveryState.SENT, message.sid, 1)
    assert delivery.job_id == job.pk
    assert job.status_message == "sms: sent 1, skipped 0, failed 0, unknown 0"
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED


def test_a_twilio_500_is_retried_an_hour_later_and_then_sent_once(fake_twilio):
    fake_twilio.fail_next(status=500)
    alert = AlertFactory()
    services.alert_send_now(alert=alert)
    wait_until(lambda: only_job().state == State.RETRYING, what="the first attempt to fail")
    job = only_job()
    assert job.eta - job.modified_at == timedelta(hours=1) and job.published_at is None
    pending = Delivery.objects.get()
    assert pending.state == DeliveryState.PENDING and "500" in pending.error
    assert fake_twilio.messages == []

    job = retry_now(job)
    assert job.state == State.SUCCEEDED
    assert len(fake_twilio.messages) == 1
    assert Delivery.objects.get().attempts == 2


def test_an_invalid_number_fails_at_once_without_a_retry(fake_twilio):
    fake_twilio.fail_next(status=400, code=21211)
    alert = AlertFactory()
    services.alert_send_now(alert=alert)
    job = only_job().wait(timeout=30)
    assert job.state == State.FAILED and job.attempts == 1
    assert not job.events.filter(kind=EventKind.RETRIED).exists()
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.FAILED and "21211" in delivery.error
    assert delivery.error_code == "21211", "what the metrics count failures by"
    assert fake_twilio.messages == []


@pytest.mark.parametrize(
    "change, reason, state_after",
    [
        (lambda alert: services.alert_pause(alert=alert), "alert is paused", AlertState.PAUSED),
        (
            lambda alert: services.alert_acknowledge(alert=alert, by="test"),
            "alert is acknowledged",
            AlertState.ACKNOWLEDGED,
        ),
        # Expired, the one-off alert is over: its last job ended with nothing left to send.
        (
            lambda alert: type(alert).objects.filter(pk=alert.pk).update(expires_at=timezone.now()),
            "alert expired",
            AlertState.COMPLETED,
        ),
    ],
    ids=["paused", "acknowledged", "expired"],
)
def test_a_job_aborts_if_the_alert_changed_between_scheduling_and_sending(fake_twilio, change, reason, state_after):
    alert = AlertFactory(send_at=timezone.now() + timedelta(days=1))
    services.alert_schedule_sync(alert=alert)
    change(alert)
    job_run_now(job_id=only_job().pk)
    job = only_job().wait(timeout=30)
    assert job.state == State.ABORTED
    assert job.status_message.startswith(reason)
    assert fake_twilio.messages == []
    alert.refresh_from_db()
    assert alert.state == state_after


def test_resuming_a_one_off_whose_time_passed_while_paused_sends_what_it_had_not_sent_once(fake_twilio):
    ada, bo = ContactFactory(name="Ada", phone="+14155550101"), ContactFactory(name="Bo", phone="+14155550102")
    alert = AlertFactory(recipients=[ada, bo], send_at=timezone.now() + timedelta(seconds=1.5))
    services.alert_schedule_sync(alert=alert)
    services.alert_pause(alert=alert)
    job = only_job().wait(timeout=30)
    assert job.state == State.ABORTED and job.status_message.startswith("alert is paused")
    # As if the pause had stopped the job after Bo's message: the next attempt must not send it again.
    Delivery.objects.create(occurrence=Occurrence.objects.get(), contact=bo, channel="sms", address=bo.phone,
                            state=DeliveryState.SENT, attempts=1)  # fmt: skip

    services.alert_resume(alert=alert)

    wait_until(lambda: only_job().state == State.SUCCEEDED, what="the resumed job")
    assert [message.to for message in fake_twilio.messages] == ["+14155550101"]
    wait_until(lambda: Alert.objects.get(pk=alert.pk).state == AlertState.COMPLETED, what="the alert to complete")


def test_resuming_a_one_off_leaves_a_job_an_operator_cancelled_cancelled(fake_twilio):
    alert = AlertFactory(send_at=timezone.now() + timedelta(seconds=1))
    services.alert_schedule_sync(alert=alert)
    services.alert_pause(alert=alert)
    job_cancel(job_id=only_job().pk, reason="cancelled by an operator")
    wait_until(lambda: timezone.now() > alert.send_at, what="the alert's time to pass")

    services.alert_resume(alert=alert)

    assert only_job().state == State.CANCELLED
    assert fake_twilio.messages == []


def test_a_one_off_whose_channels_change_before_its_time_sends_on_those_it_has_then_once(fake_twilio, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert = AlertFactory(send_at=timezone.now() + timedelta(seconds=2), send_email=True)
    services.alert_schedule_sync(alert=alert)
    for send_sms, send_email in ((False, True), (True, False)):  # SMS unticked, then ticked again
        alert.send_sms, alert.send_email = send_sms, send_email
        alert.save()
        services.alert_schedule_sync(alert=alert)

    sms_job = only_job(task_name="alerts.deliver_sms", state__in=ACTIVE_STATES)
    assert sms_job.wait(timeout=30).state == State.SUCCEEDED, sms_job.errors
    assert len(fake_twilio.messages) == 1 and mail.outbox == []
    assert set(Job.objects.exclude(pk=sms_job.pk).values_list("state", flat=True)) == {State.CANCELLED}
    wait_until(lambda: Alert.objects.get(pk=alert.pk).state == AlertState.COMPLETED, what="the alert to complete")


def test_cancelling_an_alert_cancels_its_pending_jobs(fake_twilio):
    alert = AlertFactory(send_at=timezone.now() + timedelta(seconds=2), send_email=True)
    services.alert_schedule_sync(alert=alert)
    assert services.alert_cancel(alert=alert) == 2
    assert set(Job.objects.values_list("state", flat=True)) == {State.CANCELLED}


def test_an_inactive_only_recipient_aborts_the_job_and_completes_the_one_off_alert(fake_twilio):
    alert = AlertFactory(recipients=[ContactFactory(is_active=False)])
    services.alert_send_now(alert=alert)
    job = only_job().wait(timeout=30)
    assert job.state == State.ABORTED and "no active recipient" in job.status_message
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED, "nothing is left to send: it must not stay active forever"


def test_an_aborted_job_leaves_the_alert_active_while_another_of_its_jobs_waits(fake_twilio, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert = AlertFactory(recipients=[ContactFactory(email="")], send_email=True,
                         send_at=timezone.now() + timedelta(days=1))  # fmt: skip
    services.alert_schedule_sync(alert=alert)
    email_job = only_job(task_name="alerts.deliver_email")
    job_run_now(job_id=email_job.pk)
    assert email_job.wait(timeout=30).state == State.ABORTED
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE, "its SMS job is still waiting"

    sms_job = only_job(task_name="alerts.deliver_sms")
    job_run_now(job_id=sms_job.pk)
    assert sms_job.wait(timeout=30).state == State.SUCCEEDED
    alert.refresh_from_db()
    assert alert.state == AlertState.COMPLETED


def test_two_planners_and_a_replayed_run_deliver_one_message(fake_twilio):
    alert = AlertFactory(schedule_kind=ScheduleKind.INTERVAL, send_at=None, interval_every=1, interval_unit="days",
                         starts_at=timezone.now() + timedelta(seconds=1))  # fmt: skip
    Alert.objects.filter(pk=alert.pk).update(next_due_at=alert.starts_at)
    alerts_plan_due()
    alerts_plan_due()  # a second beat, or a replayed run
    services.alert_schedule_sync(alert=Alert.objects.get(pk=alert.pk))  # an edit that moves nothing
    due = Job.objects.get(eta=alert.starts_at)
    due.wait(timeout=30)
    assert Occurrence.objects.filter(alert=alert).count() == 1
    assert len(fake_twilio.messages) == 1
    assert Alert.objects.get(pk=alert.pk).next_due_at == alert.starts_at + timedelta(days=1)


def test_email_goes_through_smtp(fake_smtp):
    alert = AlertFactory(send_sms=False, send_email=True, name="Disk full", recipients=[ContactFactory(name="Bo")])
    services.alert_send_now(alert=alert)
    job = only_job().wait(timeout=30)
    assert job.state == State.SUCCEEDED, job.errors
    [received] = fake_smtp.messages
    assert received.message["Subject"] == "Disk full"
    assert "Hi Bo, Disk full needs you." in received.message.get_content()
    assert Delivery.objects.get().provider_id == received.message["Message-ID"]


def test_without_twilio_sms_go_to_the_local_sink_and_the_job_says_so(settings):
    settings.TWILIO_ACCOUNT_SID = ""
    contact = ContactFactory(phone="+14155550123")
    services.alert_send_now(alert=AlertFactory(recipients=[contact]))
    job = only_job().wait(timeout=30)
    assert job.state == State.SUCCEEDED and job.result["via_sink"] is True
    assert "local sink" in job.status_message
    assert SmsSinkMessage.objects.get().to == "+14155550123"


def test_an_email_left_sending_by_a_dead_worker_becomes_unknown_and_is_not_resent(fake_smtp):
    """SMTP cannot be asked what it took: sending again could duplicate (SMS are settled by asking
    Twilio: tests/alerts/test_interrupted_delivery.py)."""
    alert = AlertFactory(send_sms=False, send_email=True)
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())
    Delivery.objects.create(
        occurrence=occurrence, contact=alert.recipients.get(), channel="email", state=DeliveryState.SENDING
    )
    occurrence_enqueue(alert=alert, scheduled_for=occurrence.scheduled_for)
    job = only_job().wait(timeout=30)
    assert Delivery.objects.get().state == DeliveryState.UNKNOWN
    assert fake_smtp.messages == []
    assert job.state == State.ATTENTION and "may not have gone out" in job.status_message


def test_resending_a_job_that_needs_attention_sends_its_unknown_email_once(fake_smtp):
    alert = AlertFactory(send_sms=False, send_email=True)
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())
    contact = alert.recipients.get()
    Delivery.objects.create(
        occurrence=occurrence, contact=contact, channel="email", address=contact.email, state=DeliveryState.SENDING
    )
    occurrence_enqueue(alert=alert, scheduled_for=occurrence.scheduled_for)
    assert only_job().wait(timeout=30).state == State.ATTENTION
    assert job_run_now(job_id=only_job().pk), "the operator's Resend on the job page"
    wait_until(lambda: only_job().state == State.SUCCEEDED, what="the resent attempt")
    assert len(fake_smtp.messages) == 1
    assert Delivery.objects.get().state == DeliveryState.SENT


def retry_now(job: Job) -> Job:
    """Bring an hourly retry forward instead of waiting out the hour."""
    Job.objects.filter(pk=job.pk).update(eta=timezone.now())
    # The worker publishes a retry that is due right after writing it: on a slow machine that comes after
    # the ETA moved, and the dispatcher then finds nothing to publish. Either publish runs the job once.
    publishing.dispatch_due()
    return job.wait(timeout=30)


@pytest.mark.parametrize("twilio_took_it", [True, False], ids=["accepted-late", "never-accepted"])
def test_after_a_timeout_the_retry_asks_twilio_before_sending_again(fake_twilio, settings, twilio_took_it):
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    fake_twilio.hang_next(1.5, accept=twilio_took_it)
    services.alert_send_now(alert=AlertFactory())
    wait_until(lambda: only_job().state == State.RETRYING, what="the timed-out attempt")
    assert Delivery.objects.get().unanswered_since is not None
    wait_until(lambda: len(fake_twilio.messages) == int(twilio_took_it), what="the fake to finish hanging")

    job = retry_now(only_job())
    assert job.state == State.SUCCEEDED, job.errors
    [message] = fake_twilio.messages
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.provider_id, delivery.unanswered_since) == (DeliveryState.SENT, message.sid, None)
    assert ("not sent again" in delivery.note) is twilio_took_it


def timed_out_an_hour_ago(settings, fake_twilio, alert: Alert) -> Job:
    """The alert sent, its send timed out (Twilio never took it), and that attempt moved an hour back."""
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    fake_twilio.hang_next(1.5)
    services.alert_send_now(alert=alert)
    job = wait_until(lambda: Job.objects.filter(state=State.RETRYING).first(), what="the timed-out attempt")
    Delivery.objects.filter(occurrence__alert=alert).update(unanswered_since=F("unanswered_since") - timedelta(hours=1))
    return job


def test_a_retry_an_hour_after_a_timeout_does_not_take_the_next_occurrences_message_for_its_own(fake_twilio, settings):
    ada = ContactFactory(name="Ada")
    job = timed_out_an_hour_ago(settings, fake_twilio, AlertFactory(recipients=[ada], name="Boiler"))
    # The next occurrence sent the same text since, and its delivery is not recorded yet (a job writes its
    # last outcome with its own).
    next_ones = sms_channel().send(to=ada.phone, body="Hi Ada, Boiler needs you.\n\nAcknowledge: https://a.example/1")

    job = retry_now(job)

    assert job.state == State.SUCCEEDED, job.errors
    _, resent = fake_twilio.messages
    assert resent.to == ada.phone and resent.sid != next_ones.provider_id
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.provider_id) == (DeliveryState.SENT, resent.sid)


def test_a_retry_after_a_timeout_does_not_take_a_message_another_delivery_recorded_for_its_own(fake_twilio, settings):
    """Two alerts with the same text to one contact, sent moments apart: the one whose send timed out (and
    never reached Twilio) finds the other's message in its own time, already recorded by the other."""
    ada = ContactFactory(name="Ada")
    boiler, twin = (AlertFactory(recipients=[ada], name="Boiler") for _ in range(2))
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    fake_twilio.hang_next(1.5)
    services.alert_send_now(alert=boiler)
    job = wait_until(lambda: Job.objects.filter(state=State.RETRYING).first(), what="the timed-out attempt")
    services.alert_send_now(alert=twin)
    assert Job.objects.exclude(pk=job.pk).get().wait(timeout=30).state == State.SUCCEEDED
    [twins] = fake_twilio.messages

    job = retry_now(job)

    assert job.state == State.SUCCEEDED, job.errors
    _, resent = fake_twilio.messages
    provider_ids = dict(Delivery.objects.values_list("occurrence__alert", "provider_id"))
    assert provider_ids == {boiler.pk: resent.sid, twin.pk: twins.sid}


def test_after_a_second_timeout_the_retry_looks_for_the_message_of_the_second(fake_twilio, settings):
    job = timed_out_an_hour_ago(settings, fake_twilio, AlertFactory())
    # The retry finds nothing from the first attempt and sends again; that send times out too, and this time
    # Twilio took the message.
    fake_twilio.hang_next(1.5, accept=True)
    Job.objects.filter(pk=job.pk).update(eta=timezone.now())
    publishing.dispatch_due()
    wait_until(lambda: Job.objects.filter(pk=job.pk, state=State.RETRYING, attempts=2).exists(), what="attempt 2")
    wait_until(lambda: len(fake_twilio.messages) == 1, what="the fake to take the message after all")

    job = retry_now(job)

    assert job.state == State.SUCCEEDED, job.errors
    [message] = fake_twilio.messages
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.provider_id) == (DeliveryState.SENT, message.sid)
    assert "not sent again" in delivery.note


@pytest.mark.parametrize("code", [21611, 30001, 20429])
def test_a_full_twilio_queue_is_retried_in_seconds_not_in_an_hour(fake_twilio, monkeypatch, code):
    # The backoff's range shortened for the test (tests/alerts/test_channels.py checks the real one): the
    # retry is published at once with its ETA, and the worker runs it when it comes.
    monkeypatch.setattr("alerts.channels.sms.SHORT_BACKOFF_SECONDS", (1.0, 2.0))
    fake_twilio.fail_next(status=429 if code == 20429 else 400, code=code)
    services.alert_send_now(alert=AlertFactory())
    wait_until(lambda: only_job().state == State.RETRYING, what="the first attempt to meet the full queue")
    job = only_job()
    # The backoff counts from the provider's answer, a moment before the retry is written (CI saw 0.3 and
    # 1.9 ms): "seconds, not an hour" is what this checks.
    assert timedelta(seconds=0.9) <= job.eta - job.modified_at <= timedelta(seconds=2)

    job = job.wait(timeout=30)  # nothing brings it forward: it was published with its ETA at once
    assert job.state == State.SUCCEEDED, job.errors
    assert len(fake_twilio.messages) == 1
    assert job.events.filter(kind=EventKind.RETRIED).count() == 1


def test_the_sending_rate_defers_a_message_instead_of_holding_a_worker(fake_twilio, settings):
    """Two recipients, one sending number, one segment per 10 minutes: the second SMS is not slept on; its
    job comes back when its slot has come, and sends on the slot it holds without queueing again."""
    from alerts.models import SendSlot

    settings.SMS_PER_SECOND_PER_NUMBER = 1 / 600  # beyond the ETA horizon: the retry waits in the database
    first, second = ContactFactory(phone="+14155550101"), ContactFactory(phone="+14155550102")
    services.alert_send_now(alert=AlertFactory(recipients=[first, second]))
    wait_until(lambda: only_job().state == State.RETRYING, what="the attempt that sent one and deferred one")
    job = only_job()
    assert [m.to for m in fake_twilio.messages] == ["+14155550101"]
    held = Delivery.objects.get(contact=second)
    assert held.state == DeliveryState.PENDING and held.send_after is not None
    assert timedelta(seconds=590) < job.eta - job.modified_at <= timedelta(seconds=600)
    assert abs(job.eta - held.send_after) < timedelta(seconds=2)
    schedule = SendSlot.objects.get().next_free_at

    Delivery.objects.filter(pk=held.pk).update(send_after=timezone.now())  # the slot has come
    job = retry_now(job)
    assert job.state == State.SUCCEEDED, job.errors
    assert [m.to for m in fake_twilio.messages] == ["+14155550101", "+14155550102"]
    assert SendSlot.objects.get().next_free_at == schedule, "no second reservation"
    assert Delivery.objects.get(contact=second).send_after is None
