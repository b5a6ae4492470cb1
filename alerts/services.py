"""Writes on alerts: planning their occurrences when they are saved, and their life cycle."""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from alerts.escalation import occurrence_to_acknowledge
from alerts.models import (
    Alert,
    AlertState,
    Contact,
    Delivery,
    DeliveryState,
    InboundMessage,
    Occurrence,
)
from alerts.planner import occurrence_enqueue
from alerts.replanning import one_off_resume, replan, resumed_as_job_stopped
from alerts.selectors import latest_sms_delivery_to
from scheduler.models import ACTIVE_STATES, Job
from scheduler.services import jobs_cancel_all

logger = logging.getLogger(__name__)


class AlertNotActive(Exception):
    pass


def _lock(alert: Alert, *fields: str, **expressions) -> dict[str, object]:
    """Lock the alert's row for the rest of the transaction (edits, cancels and the planner take turns), and
    read ``fields`` and ``expressions`` as they are now, in the same statement."""
    return Alert.objects.select_for_update().filter(pk=alert.pk).values(*fields, **expressions).get()


def _lock_for_sending(alert: Alert) -> tuple[str, int]:
    """``_lock`` for send now: the alert's state and its number of recipients, in one statement written
    out (the ORM spent longer compiling its counting subquery than the database took to run it)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(_STATE_AND_RECIPIENTS.format(alert=_table(Alert), through=_table(Alert.recipients.through),
                                                    lock=lock), [alert.pk])  # fmt: skip
        row = cursor.fetchone()
    if row is None:
        raise Alert.DoesNotExist(f"alert {alert.pk} no longer exists")
    return row[0], row[1]


_STATE_AND_RECIPIENTS = """
    SELECT state, (SELECT COUNT(*) FROM {through} WHERE alert_id = {alert}.id) FROM {alert} WHERE id = %s{lock}"""


def alert_schedule_sync(*, alert: Alert, now: datetime | None = None) -> Occurrence | None:
    """After an alert was created or edited: re-plan what is to come, and plan what is due soon.

    "Now" is read once, so an occurrence is either kept or re-planned, never dropped by an edit that
    straddles its due time. Occurrences still to come that the schedule (as edited) still has are kept
    with their jobs, which re-fetch the alert and send its current text: an edit of the message changes no
    job. Their jobs are made to match the edited plan (channels, escalation policy, the number of jobs the
    recipients are shared out among); the other occurrences' jobs are cancelled. Returns the first
    occurrence planned now, if any.
    """
    now = now or timezone.now()
    with transaction.atomic():
        return replan(alert, now=now, previous=_lock(alert, "next_due_at")["next_due_at"])


def _set_state(alert: Alert, state: AlertState, *, from_states: tuple[AlertState, ...]) -> bool:
    changed = Alert.objects.filter(pk=alert.pk, state__in=from_states).update(state=state, modified_at=timezone.now())
    if changed:
        alert.state = state
    return bool(changed)


def alert_reopen(*, alert: Alert) -> bool:
    """Make a completed alert active again for one of its jobs that runs: the job was added while the
    alert's last job completed it (``alert_complete_if_done``), or an operator ran it again. No job of a
    completed alert is left otherwise, so a job that runs is never one to abort for it; once the job
    ends, its own completion check completes the alert again. ``False`` (with ``alert.state`` read
    again) if the alert was neither completed nor active any more."""
    if _set_state(alert, AlertState.ACTIVE, from_states=(AlertState.COMPLETED,)):
        return True
    alert.state = Alert.objects.values_list("state", flat=True).get(pk=alert.pk)
    return alert.state == AlertState.ACTIVE


def alert_pause(*, alert: Alert) -> bool:
    """Pause: nothing is sent while paused; jobs that come due abort, saying why."""
    return _set_state(alert, AlertState.PAUSED, from_states=(AlertState.ACTIVE,))


def alert_resume(*, alert: Alert) -> Occurrence | None:
    """Resume: recurring alerts go on from now (what fell due while paused is not sent); a one-off that
    never went out is sent now."""
    with transaction.atomic():
        if not _set_state(alert, AlertState.ACTIVE, from_states=(AlertState.PAUSED,)):
            raise AlertNotActive(f"“{alert}” is {alert.state}; only paused alerts can be resumed.")
        planned = replan(alert, now=timezone.now(), previous=None)
        if not alert.is_recurring:
            one_off_resume(alert)
        return planned


def alert_cancel(*, alert: Alert) -> int:
    """Cancel the alert and every job of it that has not finished; return how many jobs were cancelled.

    The state changes first, under the alert's row lock, which the planner also takes: it either planned
    before (and its jobs are cancelled here) or finds the alert cancelled, so the count is the truth.
    """
    with transaction.atomic():
        _set_state(alert, AlertState.CANCELLED, from_states=(AlertState.ACTIVE, AlertState.PAUSED))
        return jobs_cancel_all(target=alert, reason="the alert was cancelled")


def occurrence_acknowledge(*, occurrence: Occurrence, by: str, at: datetime | None = None) -> bool:
    """Stop the occurrence's escalation: its next step's abort check sees it. ``False`` if it was already."""
    at = at or timezone.now()
    changed = Occurrence.objects.filter(pk=occurrence.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=at, acknowledged_by=by[:200]
    )
    if changed:
        occurrence.acknowledged_at, occurrence.acknowledged_by = at, by[:200]
        logger.info("occurrence %s of alert %s acknowledged by %s", occurrence.pk, occurrence.alert_id, by)
    return bool(changed)


def alert_acknowledge(*, alert: Alert, by: str, occurrence: Occurrence | None = None) -> bool:
    """Acknowledged: no more reminders; pending retries abort at their abort check.

    With an escalation policy, it is the occurrence's walk that stops (``occurrence``, or the latest one
    due): a recurring alert goes on with its next occurrences; a one-off, having no other, is acknowledged
    as a whole too. A cancelled alert cannot be acknowledged.
    """
    if alert.escalation_policy_id is not None:
        return _acknowledge_walk(alert, by=by, occurrence=occurrence)
    return _acknowledge_alert(alert, by=by)


def _acknowledge_walk(alert: Alert, *, by: str, occurrence: Occurrence | None) -> bool:
    if alert.state == AlertState.CANCELLED:
        return False
    now = timezone.now()
    occurrence = occurrence or occurrence_to_acknowledge(alert, now=now)
    changed = occurrence is not None and occurrence_acknowledge(occurrence=occurrence, by=by, at=now)
    if not alert.is_recurring:
        changed = _acknowledge_alert(alert, by=by) or changed
    return changed


def _acknowledge_alert(alert: Alert, *, by: str) -> bool:
    changed = _set_state(
        alert, AlertState.ACKNOWLEDGED, from_states=(AlertState.ACTIVE, AlertState.PAUSED, AlertState.COMPLETED)
    )
    if changed:
        logger.info("alert %s acknowledged by %s", alert.pk, by)
    return changed


class InboundReplay(Exception):
    """An inbound SMS whose SID was received before: a replayed request, which changes nothing again."""


def inbound_sms_record(*, sid: str, sender: str, body: str) -> InboundMessage:
    """Remember an inbound SMS by its SID; raise ``InboundReplay`` if it was received before."""
    message, created = InboundMessage.objects.get_or_create(sid=sid, defaults={"sender": sender, "body": body})
    if not created:
        raise InboundReplay(f"inbound SMS {sid} was received at {message.received_at:%Y-%m-%d %H:%M:%S} UTC")
    return message


def alert_acknowledge_by_reply(*, message: InboundMessage, contact: Contact) -> Alert | None:
    """Acknowledge the last alert sent to the contact's phone before the reply arrived; ``None`` if none.

    Only an SMS sent before the reply can be what it answers: an alert sent later stays active.
    """
    delivery = latest_sms_delivery_to(contact, sent_before=message.received_at)
    if delivery is None:
        return None
    alert = delivery.occurrence.alert
    by = f"SMS reply {message.sid} from contact {contact.pk}"
    alert_acknowledge(alert=alert, by=by, occurrence=delivery.occurrence)
    InboundMessage.objects.filter(pk=message.pk).update(acknowledged=alert)
    return alert


def alert_send_now(*, alert: Alert) -> Occurrence:
    """Deliver an occurrence now, besides the schedule."""
    with transaction.atomic():
        # The state under the lock, not the caller's copy: the alert's last job may have completed it since.
        alert.state, recipients = _lock_for_sending(alert)
        if alert.state == AlertState.COMPLETED:
            _set_state(alert, AlertState.ACTIVE, from_states=(AlertState.COMPLETED,))
        if alert.state != AlertState.ACTIVE:
            raise AlertNotActive(f"“{alert}” is {alert.state}; resume or re-create it to send.")
        return occurrence_enqueue(alert=alert, scheduled_for=timezone.now(), recipients=recipients)


def alert_duplicate(*, alert: Alert) -> Alert:
    """A paused copy, so that it sends nothing until someone has looked at it."""
    recipients = list(alert.recipients.all())
    copy = Alert.objects.get(pk=alert.pk)
    copy.pk = None
    copy.name = f"{alert.name} (copy)"[:200]
    copy.state = AlertState.PAUSED
    copy.next_due_at = None
    copy.save()
    copy.recipients.set(recipients)
    return copy


def alert_complete_if_done(*, alert: Alert) -> bool:
    """A one-off alert is completed once nothing of it is left to plan and no job of it is waiting or running.

    Run after a job's outcome is committed (in its transaction, two jobs ending together would each
    see the other still running, and neither would complete the alert). It sees the jobs committed when
    it starts: one being added meanwhile (a send now or a fallback committing) is not among them, and the
    alert may be completed with that job waiting; the job reopens it when it runs (``alert_reopen``).
    """
    if alert.is_recurring:
        return False
    with connection.cursor() as cursor:
        cursor.execute(*_completion(alert))
        return cursor.rowcount > 0


def alert_job_aborted(*, alert: Alert, job_id: int, paused: bool) -> None:
    """After a job of the alert aborted, once its outcome is committed: a one-off alert whose last job it was
    is over (``alert_complete_if_done``), unless the job stopped because the alert was ``paused`` and it has
    been resumed since: then the job runs again (``resumed_as_job_stopped``)."""
    if paused and not alert.is_recurring and resumed_as_job_stopped(alert=alert, job_id=job_id):
        return
    alert_complete_if_done(alert=alert)


def alert_complete_with_outcome(*, job, alert: Alert) -> None:
    """``alert_complete_if_done`` in the statement that records ``job``'s outcome, once its body returns: no
    round trip or commit of its own when the job is the alert's last. Done after that commit instead if
    another job of the alert was still waiting or running in that statement, or another transaction held
    the alert's row (``JobContext.try_with_outcome``)."""
    if alert.is_recurring:
        return
    completion = _completion(alert, ending=(job.id, job.task_id))
    job.try_with_outcome(*completion, otherwise=lambda: alert_complete_if_done(alert=alert))


def _completion(alert: Alert, *, ending: tuple[int, str] | None = None) -> tuple[str, list[object]]:
    """The check and the change in one statement; written out, since every delivery job runs it and the ORM
    spent a millisecond compiling its NOT EXISTS (jobs_for_target's filter, by hand).

    With ``ending`` (a job's id and its attempt's task id), for the statement that ends that attempt: the
    job is still running there, and counts only if another attempt has it now (the sweep gave it one);
    the alert's row is taken only if no one holds it (that statement holds the job's row already, and an
    alert's cancel takes the alert's row, then its jobs').
    """
    table = _table(Alert)
    row_lock, lock_params, other_jobs, other_params = "", [], "", []
    if ending is not None:
        other_jobs, other_params = " AND (id <> %s OR celery_task_id <> %s)", list(ending)
        if connection.features.has_select_for_update_skip_locked:
            row_lock = f" AND id = (SELECT id FROM {table} WHERE id = %s FOR UPDATE SKIP LOCKED)"
            lock_params = [alert.pk]
    statement = _COMPLETE_IF_DONE.format(alert=table, job=_table(Job), row_lock=row_lock, other_jobs=other_jobs,
                                         states=", ".join(["%s"] * len(ACTIVE_STATES)))  # fmt: skip
    alert_type = ContentType.objects.get_for_model(Alert).pk
    params = [AlertState.COMPLETED, alert.pk, AlertState.ACTIVE, *lock_params,
              alert_type, str(alert.pk), *sorted(ACTIVE_STATES), *other_params]  # fmt: skip
    return statement, params


_COMPLETE_IF_DONE = """
    UPDATE {alert} SET state = %s WHERE id = %s AND state = %s AND next_due_at IS NULL{row_lock} AND NOT EXISTS (
        SELECT 1 FROM {job} WHERE target_type_id = %s AND target_id = %s AND state IN ({states}){other_jobs}
    )"""


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# Twilio's message statuses, and the delivery states each may replace: a late "sent" never undoes "delivered".
_STATUS_UPDATES = {
    "sent": (DeliveryState.SENT, (DeliveryState.SENDING, DeliveryState.UNKNOWN)),
    "delivered": (DeliveryState.DELIVERED, (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.UNKNOWN)),
    "undelivered": (DeliveryState.UNDELIVERED, (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.UNKNOWN)),
    "failed": (DeliveryState.FAILED, (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.UNKNOWN)),
}


def delivery_status_update(*, provider_id: str, status: str, error_code: str = "") -> bool:
    """Apply a Twilio status callback to its delivery; ``False`` if it changes nothing."""
    update = _STATUS_UPDATES.get(status)
    if not provider_id or update is None:
        return False
    state, replaces = update
    values: dict[str, object] = {"state": state, "modified_at": timezone.now()}
    if error_code:
        values["error"] = f"Twilio error {error_code}"
        values["error_code"] = error_code[:32]
    return bool(Delivery.objects.filter(provider_id=provider_id, state__in=replaces).update(**values))
