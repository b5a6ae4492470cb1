"""Retention of occurrences, deliveries and the SMS sink, through the engine's prune (alerts/retention.py)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts.models import AlertState, Delivery, DeliveryState, Occurrence, SmsSinkMessage
from alerts.selectors import latest_sms_delivery_to
from scheduler.models import Job, State
from scheduler.retention import prune
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def ago(days: float):
    return timezone.now() - timedelta(days=days)


def occurrence(
    days: float, *, alert=None, contact=None, state=DeliveryState.SENT, channel="email", alert_state=None
) -> Occurrence:
    """An occurrence due ``days`` ago with one delivery in ``state``; email unless told, so no ACK needs it."""
    alert = alert or AlertFactory(state=alert_state or AlertState.ACKNOWLEDGED)
    contact = contact or alert.recipients.first()
    item = Occurrence.objects.create(alert=alert, scheduled_for=ago(days), created_at=ago(days))
    Delivery.objects.create(occurrence=item, contact=contact, channel=channel, state=state, created_at=ago(days))
    return item


def remaining(*occurrences: Occurrence) -> set[int]:
    return set(Occurrence.objects.filter(pk__in=[o.pk for o in occurrences]).values_list("pk", flat=True))


def test_old_occurrences_go_with_their_deliveries_and_recent_ones_stay():
    old, recent = occurrence(31), occurrence(29)
    report = prune()
    assert report.counts["occurrences"] == 1 and report.counts["deliveries"] == 1
    assert remaining(old, recent) == {recent.pk}
    assert not Delivery.objects.filter(occurrence_id=old.pk).exists()


def test_an_occurrence_with_a_failed_delivery_is_kept_as_long_as_failed_jobs():
    kept = [occurrence(31, state=state) for state in (DeliveryState.FAILED, DeliveryState.UNKNOWN)]
    gone = occurrence(91, state=DeliveryState.UNDELIVERED)
    prune()
    assert remaining(*kept, gone) == {o.pk for o in kept}


def test_an_occurrence_whose_delivery_may_still_settle_is_kept():
    kept = [occurrence(400, state=state) for state in (DeliveryState.PENDING, DeliveryState.SENDING)]
    prune()
    assert remaining(*kept) == {o.pk for o in kept}


def test_an_occurrence_with_a_waiting_or_running_delivery_job_is_kept():
    waiting, running, finished = occurrence(40), occurrence(40), occurrence(40)
    JobFactory(state=State.RETRYING, unique_key=f"occurrence:{waiting.pk}:email")
    JobFactory(state=State.RUNNING, unique_key=f"occurrence:{running.pk}:sms")
    JobFactory(state=State.SUCCEEDED, unique_key=f"occurrence:{finished.pk}:email")
    prune()
    assert remaining(waiting, running, finished) == {waiting.pk, running.pk}


def test_an_occurrence_with_a_waiting_share_of_its_fan_out_is_kept():
    waiting, finished = occurrence(40), occurrence(40)
    JobFactory(state=State.QUEUED, unique_key=f"occurrence:{waiting.pk}:sms:share:3:of:4")
    JobFactory(state=State.SUCCEEDED, unique_key=f"occurrence:{finished.pk}:sms:share:3:of:4")
    prune()
    assert remaining(waiting, finished) == {waiting.pk}


def test_an_occurrence_with_a_waiting_step_of_its_escalation_is_kept():
    # An alert that escalates in rounds until someone answers may outlive the retention period.
    waiting, finished = occurrence(40, alert_state=AlertState.ACTIVE), occurrence(40, alert_state=AlertState.ACTIVE)
    JobFactory(state=State.SCHEDULED, unique_key=f"occurrence:{waiting.pk}:email:round:12:step:2")
    JobFactory(state=State.SUCCEEDED, unique_key=f"occurrence:{finished.pk}:email:round:12:step:2")
    prune()
    assert remaining(waiting, finished) == {waiting.pk}


def test_the_latest_sms_to_a_contact_stays_while_its_alert_waits_for_an_acknowledgement():
    contact = ContactFactory()
    waiting = AlertFactory(state=AlertState.ACTIVE, recipients=[contact])
    older = occurrence(60, alert=waiting, contact=contact, channel="sms")
    latest = occurrence(45, alert=waiting, contact=contact, channel="sms")

    prune()

    # An "ACK" reply from that phone still finds the alert it answers.
    assert remaining(older, latest) == {latest.pk}
    assert latest_sms_delivery_to(contact, sent_before=timezone.now()).occurrence.alert == waiting


def test_the_latest_sms_goes_once_a_newer_one_replaces_it_or_its_alert_is_answered():
    contact = ContactFactory()
    waiting = AlertFactory(state=AlertState.PAUSED, recipients=[contact])
    answered = AlertFactory(state=AlertState.ACKNOWLEDGED, recipients=[contact])
    replaced = occurrence(45, alert=waiting, contact=contact, channel="sms")
    newer = occurrence(1, alert=waiting, contact=contact, channel="sms")
    other_contact = ContactFactory()
    acknowledged = occurrence(45, alert=answered, contact=other_contact, channel="sms")

    prune()

    assert remaining(replaced, newer, acknowledged) == {newer.pk}


def test_deleting_a_finished_job_keeps_its_delivery_record():
    item = occurrence(1)
    job = JobFactory(state=State.SUCCEEDED, modified_at=ago(31))
    Delivery.objects.filter(occurrence=item).update(job=job)
    prune()
    assert not Job.objects.filter(pk=job.pk).exists()
    assert Delivery.objects.get(occurrence=item).job_id is None


def test_old_sms_in_the_local_sink_go():
    old = SmsSinkMessage.objects.create(to="+14155550100", body="old")
    SmsSinkMessage.objects.filter(pk=old.pk).update(created_at=ago(31))
    new = SmsSinkMessage.objects.create(to="+14155550100", body="new")
    report = prune()
    assert report.counts["SMS sink messages"] == 1
    assert list(SmsSinkMessage.objects.values_list("pk", flat=True)) == [new.pk]


def test_prune_jobs_prunes_the_alerts_records_too_in_batches_and_a_dry_run_counts_them(settings):
    settings.JOB_PRUNE_BATCH_SIZE = 2
    contact = ContactFactory()
    waiting = AlertFactory(state=AlertState.ACTIVE, recipients=[contact])
    doomed = [occurrence(31) for _ in range(5)]
    needed = occurrence(50, alert=waiting, contact=contact, channel="sms")
    out = StringIO()

    call_command("prune_jobs", "--dry-run", stdout=out)
    assert "5 occurrences, 5 deliveries, 0 SMS sink messages" in out.getvalue()
    assert Occurrence.objects.count() == 6

    call_command("prune_jobs", stdout=out)
    assert "deleted 0 jobs, 0 job events, 5 occurrences, 5 deliveries" in out.getvalue()
    assert remaining(*doomed, needed) == {needed.pk}
