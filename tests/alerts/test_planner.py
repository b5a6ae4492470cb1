"""The planner and the edits around it: an occurrence is planned once, kept by edits that do not move it,
and never lost to a late planner, an edit that straddles its due time or a cancel racing the planner."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTasks

from alerts import services
from alerts.models import Alert, AlertState, Occurrence, ScheduleKind
from alerts.planner import alert_plan, alerts_plan_due
from scheduler.models import EventKind, Job, JobEvent, State
from tests.alerts.factories import AlertFactory, ContactFactory, escalation_policy
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_sms_rate(settings):
    settings.SMS_PER_SECOND_PER_NUMBER = 1000


def daily_interval_alert(starts_at: datetime, **fields) -> Alert:
    return AlertFactory(schedule_kind=ScheduleKind.INTERVAL, send_at=None, interval_every=1, interval_unit="days",
                        starts_at=starts_at, **fields)  # fmt: skip


def in_thread(target) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.only_on("postgresql")
@pytest.mark.usefixtures("worker")
def test_a_message_edit_that_straddles_the_due_time_keeps_the_occurrence_and_sends_the_new_text(fake_twilio):
    due = timezone.now().replace(microsecond=0) + timedelta(seconds=3)
    alert = daily_interval_alert(due, message="Old text for {{ contact.name }}")
    services.alert_schedule_sync(alert=alert)
    job = Job.objects.get(eta=due)
    PeriodicTasks.objects.get_or_create(ident=1, defaults={"last_update": timezone.now()})
    locked, release = threading.Event(), threading.Event()

    def concurrent_saves_hold_the_beat_row() -> None:
        # What 40 concurrent admin saves did: each one waited on django-celery-beat's single change row.
        with transaction.atomic():
            PeriodicTasks.objects.select_for_update().get(ident=1)
            locked.set()
            release.wait(timeout=30)

    holder = in_thread(concurrent_saves_hold_the_beat_row)
    locked.wait(timeout=10)
    threading.Timer(max(0.0, (due - timezone.now()).total_seconds()) + 1.0, release.set).start()
    wait_until(lambda: timezone.now() >= due - timedelta(milliseconds=300), what="just before the due time")
    with transaction.atomic():  # the admin's save: it starts before the due time and commits after it
        alert.message = "New text for {{ contact.name }}"
        alert.save()
        services.alert_schedule_sync(alert=alert)
    holder.join(timeout=30)

    job.wait(timeout=30)
    assert job.state == State.SUCCEEDED, job.errors
    [message] = fake_twilio.messages
    assert message.body.startswith("New text for ")
    assert Occurrence.objects.filter(alert=alert).count() == 1
    assert Alert.objects.get(pk=alert.pk).next_due_at == due + timedelta(days=1)


def test_a_message_or_recipients_edit_leaves_the_occurrence_and_its_job_untouched():
    alert = daily_interval_alert(timezone.now() + timedelta(seconds=60))
    services.alert_schedule_sync(alert=alert)
    occurrence, job = Occurrence.objects.get(), Job.objects.get()
    alert.message = "Edited {{ contact.name }}"
    alert.name = "Renamed"
    alert.save()
    services.alert_schedule_sync(alert=alert)
    assert Occurrence.objects.get().pk == occurrence.pk
    assert Job.objects.get().pk == job.pk and Job.objects.get().state == job.state
    assert not JobEvent.objects.filter(kind=EventKind.CANCELLED).exists()


def test_moving_the_schedule_cancels_the_moved_occurrence_and_plans_the_new_time():
    first = timezone.now() + timedelta(seconds=60)
    alert = daily_interval_alert(first)
    services.alert_schedule_sync(alert=alert)
    old_job = Job.objects.get()
    alert.starts_at = first + timedelta(seconds=30)
    alert.save()
    services.alert_schedule_sync(alert=alert)
    old_job.refresh_from_db()
    assert old_job.state == State.CANCELLED and old_job.status_message == "the alert's schedule was edited"
    assert list(Occurrence.objects.values_list("scheduled_for", flat=True)) == [alert.starts_at]
    assert Job.objects.get(state__in=[State.QUEUED, State.SCHEDULED]).eta == alert.starts_at


def test_an_edit_after_a_missed_planner_run_still_delivers_the_due_time_it_did_not_move():
    due = timezone.now() - timedelta(seconds=5)  # due, but the planner has not got to it yet
    alert = daily_interval_alert(due)
    Alert.objects.filter(pk=alert.pk).update(next_due_at=due)
    alert = Alert.objects.get(pk=alert.pk)  # as the admin loads it
    alert.message = "Edited {{ contact.name }}"
    alert.save()
    services.alert_schedule_sync(alert=alert)
    assert Job.objects.get().eta == due, "planned late, not skipped to tomorrow"
    assert Alert.objects.get(pk=alert.pk).next_due_at == due + timedelta(days=1)


BERLIN_SPRING_FORWARD = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)  # 02:00 CET jumps to 03:00 CEST


def berlin_half_past_two() -> Alert:
    with time_machine.travel(datetime(2027, 3, 26, 12, 0, tzinfo=UTC), tick=False):
        alert = AlertFactory(schedule_kind=ScheduleKind.CRONTAB, send_at=None, crontab="30 2 * * *",
                             timezone="Europe/Berlin")  # fmt: skip
        services.alert_schedule_sync(alert=alert)
    return Alert.objects.get(pk=alert.pk)


def test_a_planner_run_half_an_hour_late_on_spring_forward_day_still_plans_that_days_occurrence():
    alert = berlin_half_past_two()
    with time_machine.travel(datetime(2027, 3, 27, 1, 29, tzinfo=UTC), tick=False):
        alerts_plan_due()  # Saturday 02:30 CET planned; the runs around Sunday's are lost
    with time_machine.travel(BERLIN_SPRING_FORWARD + timedelta(minutes=30), tick=False):
        alerts_plan_due()
    planned = Occurrence.objects.filter(alert=alert).order_by("scheduled_for")
    assert list(planned.values_list("scheduled_for", flat=True)) == [
        datetime(2027, 3, 27, 1, 30, tzinfo=UTC),
        BERLIN_SPRING_FORWARD,  # 02:30 does not exist that day: 03:00 CEST
    ]
    assert Job.objects.filter(eta=BERLIN_SPRING_FORWARD).count() == 1
    assert Alert.objects.get(pk=alert.pk).next_due_at == datetime(2027, 3, 29, 0, 30, tzinfo=UTC)


def test_due_times_older_than_the_catch_up_window_are_skipped_with_a_warning(caplog):
    alert = berlin_half_past_two()
    with time_machine.travel(BERLIN_SPRING_FORWARD + timedelta(minutes=30), tick=False):
        report = alerts_plan_due()  # the planner was down for two days
    assert report.skipped == 1 and "older than the catch-up window" in caplog.text
    assert list(Occurrence.objects.filter(alert=alert).values_list("scheduled_for", flat=True)) == [
        BERLIN_SPRING_FORWARD
    ]


@pytest.mark.only_on("postgresql")
def test_the_planner_leaves_an_alert_alone_while_it_is_being_cancelled():
    alert = daily_interval_alert(timezone.now() + timedelta(seconds=30))
    Alert.objects.filter(pk=alert.pk).update(next_due_at=alert.starts_at)
    reports = []
    with transaction.atomic():
        cancelled_jobs = services.alert_cancel(alert=alert)
        in_thread(lambda: reports.append(alerts_plan_due())).join(timeout=30)
    reports.append(alerts_plan_due())
    assert cancelled_jobs == 0 and [r.occurrences for r in reports] == [0, 0]
    assert not Job.objects.exists() and Alert.objects.get(pk=alert.pk).state == AlertState.CANCELLED


@pytest.mark.only_on("postgresql")
def test_a_cancel_that_comes_while_the_planner_plans_counts_and_cancels_what_it_planned():
    alert = daily_interval_alert(timezone.now() + timedelta(seconds=30))
    Alert.objects.filter(pk=alert.pk).update(next_due_at=alert.starts_at)
    planned, proceed = threading.Event(), threading.Event()

    def planner_mid_run() -> None:
        with transaction.atomic():
            locked = Alert.objects.select_for_update().get(pk=alert.pk)
            alert_plan(alert=locked, now=timezone.now())
            planned.set()
            proceed.wait(timeout=30)

    planner = in_thread(planner_mid_run)
    planned.wait(timeout=10)
    threading.Timer(0.3, proceed.set).start()
    started = time.monotonic()
    assert services.alert_cancel(alert=alert) == 1, "it waited for the planner and cancelled its job"
    assert time.monotonic() - started > 0.2
    planner.join(timeout=30)
    assert Job.objects.get().state == State.CANCELLED


@pytest.mark.usefixtures("worker")
def test_send_now_if_the_time_has_passed_sends_at_once(client, django_user_model, fake_twilio):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-only"))
    five_minutes_ago = timezone.now() - timedelta(minutes=5)
    alert = AlertFactory.build()
    recipient = AlertFactory().recipients.get()
    response = client.post("/admin/alerts/alert/add/", {
        "name": "Late reminder", "message": alert.message, "send_sms": "on", "recipients": [recipient.pk],
        "timezone": "UTC", "schedule_kind": ScheduleKind.ONCE, "send_at_0": f"{five_minutes_ago:%Y-%m-%d}",
        "send_at_1": f"{five_minutes_ago:%H:%M:%S}", "send_if_past": "on", "max_attempts": "24",
        "retry_delay": "01:00:00",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get(label__startswith="Late reminder").wait(timeout=30)
    assert job.state == State.SUCCEEDED, job.errors
    assert len(fake_twilio.messages) == 1


def test_the_planners_batch_counts_each_alerts_recipients_for_its_shares(settings):
    settings.ALERT_RECIPIENTS_PER_JOB = 2
    due = timezone.now().replace(microsecond=0) + timedelta(minutes=1)
    crowd = daily_interval_alert(due, recipients=ContactFactory.create_batch(5))
    pair = daily_interval_alert(due, recipients=ContactFactory.create_batch(2))
    nobody = daily_interval_alert(due, recipients=[])
    Alert.objects.filter(pk__in=[crowd.pk, pair.pk, nobody.pk]).update(next_due_at=due)
    alerts_plan_due(now=due - timedelta(seconds=30))

    def keys(alert: Alert) -> list[str]:
        return sorted(job.unique_key.split(":", 2)[2] for job in Job.objects.filter(target_id=str(alert.pk)))

    assert keys(crowd) == ["sms:share:1:of:3", "sms:share:2:of:3", "sms:share:3:of:3"]
    assert keys(pair) == keys(nobody) == ["sms"]
    assert Job.objects.get(target_id=str(crowd.pk), unique_key__endswith=":1:of:3").label.endswith("of 5 recipients")
    assert Job.objects.get(target_id=str(nobody.pk)).label.endswith("· 0 recipients")


def test_one_unreadable_schedule_is_set_aside_and_the_rest_of_its_batch_planned(caplog):
    due = timezone.now().replace(microsecond=0) + timedelta(minutes=1)
    plain = daily_interval_alert(due)
    manager = ContactFactory(name="Mia")
    walked = daily_interval_alert(due, escalation_policy=escalation_policy({"contacts": [manager]}))
    broken = AlertFactory(schedule_kind=ScheduleKind.CRONTAB, send_at=None, crontab="0 9 * * *")
    Alert.objects.filter(pk__in=[plain.pk, walked.pk, broken.pk]).update(next_due_at=due)
    Alert.objects.filter(pk=broken.pk).update(crontab="61 9 * * *")  # around the form's validation

    report = alerts_plan_due(now=due - timedelta(seconds=30))

    assert f"alert {broken.pk} has a schedule that cannot be read" in caplog.text
    assert report.alerts == 3 and report.occurrences == 2
    assert Alert.objects.get(pk=broken.pk).next_due_at is None
    assert not Occurrence.objects.filter(alert=broken).exists()
    for alert in (plain, walked):
        assert Occurrence.objects.get(alert=alert).scheduled_for == due
        assert Alert.objects.get(pk=alert.pk).next_due_at == due + timedelta(days=1)
    assert Job.objects.get(target_id=str(plain.pk)).unique_key.endswith(":sms")
    assert Job.objects.get(target_id=str(walked.pk)).unique_key.endswith(":sms:round:1:step:1")


def test_a_batch_of_the_planner_costs_the_same_statements_for_many_alerts_as_for_few():
    def statements_to_plan(count: int) -> int:
        due = timezone.now().replace(microsecond=0) + timedelta(minutes=1)
        alerts = [daily_interval_alert(due) for _ in range(count)]
        Alert.objects.filter(pk__in=[alert.pk for alert in alerts]).update(next_due_at=due)
        with CaptureQueriesContext(connection) as queries:
            assert alerts_plan_due(now=due - timedelta(seconds=30)).occurrences == count
        return len(queries)

    statements_to_plan(1)  # the first run also reads the alerts' content type, for the jobs' target
    assert statements_to_plan(2) == statements_to_plan(20)


def test_a_batch_plans_every_due_time_within_the_look_ahead_of_each_alert_with_its_own_job(settings):
    settings.ALERT_PLAN_AHEAD = timedelta(minutes=2)
    start = timezone.now().replace(microsecond=0) + timedelta(seconds=30)
    every_minute = AlertFactory(schedule_kind=ScheduleKind.INTERVAL, send_at=None, interval_every=1,
                                interval_unit="minutes", starts_at=start)  # fmt: skip
    daily = daily_interval_alert(start + timedelta(seconds=10))
    Alert.objects.filter(pk=every_minute.pk).update(next_due_at=start)
    Alert.objects.filter(pk=daily.pk).update(next_due_at=daily.starts_at)

    report = alerts_plan_due(now=start - timedelta(seconds=10))

    minutes = [start, start + timedelta(minutes=1)]  # within now + 2 minutes; start + 2 minutes is 10 s beyond
    assert report.occurrences == 3
    for alert, times in ((every_minute, minutes), (daily, [daily.starts_at])):
        occurrences = Occurrence.objects.filter(alert=alert).order_by("scheduled_for")
        assert [o.scheduled_for for o in occurrences] == times
        for occurrence in occurrences:
            job = Job.objects.get(unique_key=f"occurrence:{occurrence.pk}:sms")
            assert (job.eta, job.args, job.target_id) == (occurrence.scheduled_for, [occurrence.pk], str(alert.pk))
    assert Alert.objects.get(pk=every_minute.pk).next_due_at == start + timedelta(minutes=2)
    assert Alert.objects.get(pk=daily.pk).next_due_at == daily.starts_at + timedelta(days=1)


def test_an_edit_to_a_denser_schedule_plans_the_new_due_times_before_the_kept_ones_once(settings):
    settings.ALERT_PLAN_AHEAD = timedelta(minutes=2)
    ten = datetime(2027, 6, 1, 10, 0, tzinfo=UTC)
    with time_machine.travel(ten + timedelta(seconds=10), tick=False):
        alert = AlertFactory(schedule_kind=ScheduleKind.CRONTAB, send_at=None, crontab="*/2 * * * *")
        services.alert_schedule_sync(alert=alert)  # 10:02 planned, 10:04 next
    kept_job = Job.objects.get()
    with time_machine.travel(ten + timedelta(seconds=30), tick=False):
        alert.crontab = "* * * * *"
        alert.save()
        services.alert_schedule_sync(alert=alert)
    with time_machine.travel(ten + timedelta(minutes=1), tick=False):
        alerts_plan_due()

    minutes = [ten + timedelta(minutes=m) for m in (1, 2, 3)]
    assert sorted(Occurrence.objects.filter(alert=alert).values_list("scheduled_for", flat=True)) == minutes
    assert sorted(Job.objects.values_list("eta", flat=True)) == minutes, "one job for each, none twice"
    assert Job.objects.get(eta=minutes[1]).pk == kept_job.pk
    assert not Job.objects.filter(state=State.CANCELLED).exists()


def untick_sms_tick_email(alert: Alert) -> None:
    alert.send_sms, alert.send_email = False, True


def add_two_recipients(alert: Alert) -> None:
    alert.recipients.add(*ContactFactory.create_batch(2))  # three, two to a job: two shares


def give_an_escalation_policy(alert: Alert) -> None:
    alert.escalation_policy = escalation_policy({"contacts": [ContactFactory()]})


@pytest.mark.parametrize(
    "edit, keys_after",
    [
        (untick_sms_tick_email, ["email"]),
        (add_two_recipients, ["sms:share:1:of:2", "sms:share:2:of:2"]),
        (give_an_escalation_policy, ["sms:round:1:step:1"]),
    ],
    ids=["channels", "recipients", "policy"],
)
def test_an_edit_of_what_an_occurrence_sends_remakes_the_jobs_of_the_occurrences_to_come(settings, edit, keys_after):
    settings.ALERT_RECIPIENTS_PER_JOB = 2
    alert = daily_interval_alert(timezone.now() + timedelta(seconds=60))
    services.alert_schedule_sync(alert=alert)
    occurrence, old_job = Occurrence.objects.get(), Job.objects.get()
    edit(alert)
    alert.save()
    services.alert_schedule_sync(alert=alert)

    assert Occurrence.objects.get().pk == occurrence.pk
    old_job.refresh_from_db()
    assert (old_job.state, old_job.status_message) == (State.CANCELLED, "the alert was edited")
    waiting = Job.objects.filter(state__in=[State.SCHEDULED, State.QUEUED])
    assert sorted(job.unique_key.split(":", 2)[2] for job in waiting) == keys_after
    assert {job.eta for job in waiting} == {occurrence.scheduled_for}


def test_a_channel_unticked_and_ticked_again_before_its_time_gets_a_job_again():
    alert = daily_interval_alert(timezone.now() + timedelta(seconds=60))
    services.alert_schedule_sync(alert=alert)
    for send_email in (True, False, True):
        alert.send_email = send_email
        alert.save()
        services.alert_schedule_sync(alert=alert)

    waiting = Job.objects.filter(state__in=[State.SCHEDULED, State.QUEUED])
    assert sorted(job.task_name for job in waiting) == ["alerts.deliver_email", "alerts.deliver_sms"]
    assert Job.objects.filter(state=State.CANCELLED, task_name="alerts.deliver_email").count() == 1
