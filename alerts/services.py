"""Writes on alerts: planning their occurrences when they are saved, and their life cycle."""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from alerts import schedules
from alerts.escalation import occurrence_to_acknowledge
from alerts.models import (
    Alert,
    AlertState,
    Channel,
    Contact,
    Delivery,
    DeliveryState,
    InboundMessage,
    Occurrence,
    ScheduleKind,
)
from alerts.planner import (
    alert_plan,
    due_after,
    is_due_time,
    occurrence_enqueue,
    occurrence_job_key,
    occurrence_job_requests,
)
from alerts.selectors import latest_sms_delivery_to
from scheduler.models import ACTIVE_STATES, WAITING_STATES, Job, State
from scheduler.selectors import jobs_for_target
from scheduler.services import job_cancel, job_retry_aborted, jobs_cancel_all, jobs_enqueue

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


def _occurrence_jobs(alert: Alert, occurrence_ids: list[int]):
    keys = [occurrence_job_key(pk, channel) for pk in occurrence_ids for channel in Channel.values]
    # An escalation's step jobs, "occurrence:<id>:<channel>:round:<r>:step:<s>", and the jobs of a fan-out,
    # "occurrence:<id>:<channel>:share:<i>:of:<n>".
    planned = Q(unique_key__contains=":round:") | Q(unique_key__contains=":share:")
    others = Q()
    for pk in occurrence_ids:
        others |= Q(unique_key__startswith=f"occurrence:{pk}:") & planned
    return jobs_for_target(alert).filter(Q(unique_key__in=keys) | others)


def _next_due_after_edit(
    alert: Alert, *, now: datetime, kept: list[Occurrence], previous: datetime | None
) -> datetime | None:
    """Where planning goes on after an edit, judged at the one instant ``now``.

    A due time the planner had not reached yet and that the edit did not move is still delivered, late if
    it has passed meanwhile; otherwise planning starts again from the first due time after ``now``, not
    after the last occurrence kept: the edit may have added due times before it. Planning a kept time again
    finds its occurrence and its jobs, and adds the jobs the edit asks for.
    """
    if previous is not None and previous <= now and is_due_time(alert, previous):
        return previous
    if alert.send_at is not None and not alert.is_recurring:
        # A one-off's time is its only one: due (even if it has just passed, "send now if the time has
        # passed") unless it has been planned already and has come.
        if any(occurrence.scheduled_for == alert.send_at for occurrence in kept):
            return alert.send_at
        already = Occurrence.objects.filter(alert=alert, scheduled_for=alert.send_at).exists()
        return alert.send_at if not already and is_due_time(alert, alert.send_at) else None
    return due_after(alert, now)


def _cancel_jobs_off_plan(alert: Alert, future: list[Occurrence], *, kept: list[Occurrence], recipients: int) -> None:
    """Cancel the waiting jobs of the occurrences to come that the edited alert no longer plans: all those of
    an occurrence the schedule moved, and those of a kept one that its plan no longer has (a channel unticked,
    another escalation policy, another number of shares). Planning the kept times again adds what they lack."""
    planned = {request["unique_key"] for occurrence in kept
               for request in occurrence_job_requests(alert, occurrence, recipients)}  # fmt: skip
    kept_ids = {occurrence.pk for occurrence in kept}
    waiting = _occurrence_jobs(alert, [occurrence.pk for occurrence in future]).filter(state__in=WAITING_STATES)
    for job_id, key in waiting.values_list("pk", "unique_key"):
        if int(key.split(":")[1]) not in kept_ids:
            job_cancel(job_id=job_id, reason="the alert's schedule was edited")
        elif key not in planned and ":contact:" not in key:
            # Only this job is called off, not its work: ticked again, the channel gets a job again. (A job for
            # one contact, after quiet hours or a fallback, follows a delivery that ran, not the plan.)
            job_cancel(job_id=job_id, reason="the alert was edited", release_key=True)


def _replan(alert: Alert, *, now: datetime, previous: datetime | None) -> Occurrence | None:
    unresolved = {ScheduleKind.INTERVAL: alert.starts_at, ScheduleKind.RELATIVE: alert.send_at}
    if alert.schedule_kind in unresolved and unresolved[alert.schedule_kind] is None:
        # Saved without validation (a shell, a script): fix its times now, or an interval's due times would
        # move with every reading and a relative alert would never be due.
        schedules.resolve_times(alert, now=now)
        Alert.objects.filter(pk=alert.pk).update(
            starts_at=alert.starts_at, relative_base=alert.relative_base, send_at=alert.send_at
        )
    future = list(Occurrence.objects.filter(alert=alert, scheduled_for__gt=now).order_by("scheduled_for"))
    kept = [o for o in future if is_due_time(alert, o.scheduled_for)]
    moved = [o.pk for o in future if o not in kept]
    recipients = alert.recipients.count() if kept else None
    if future:
        _cancel_jobs_off_plan(alert, future, kept=kept, recipients=recipients or 0)
    if moved:
        Occurrence.objects.filter(pk__in=moved, deliveries__isnull=True).delete()
    alert.next_due_at = _next_due_after_edit(alert, now=now, kept=kept, previous=previous)
    Alert.objects.filter(pk=alert.pk).update(next_due_at=alert.next_due_at)
    if alert.state != AlertState.ACTIVE:
        return None
    planned = alert_plan(alert=alert, now=now, recipients=recipients)
    return planned[0] if planned else None


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
        return _replan(alert, now=now, previous=_lock(alert, "next_due_at")["next_due_at"])


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
        planned = _replan(alert, now=timezone.now(), previous=None)
        if not alert.is_recurring:
            _one_off_resume(alert)
        return planned


def _one_off_resume(alert: Alert) -> None:
    """The jobs of a one-off's occurrence that came due while paused ended aborted: those its plan still has
    run again (at their time, or now) with the attempts they had left. Each re-reads the alert and skips the
    deliveries made (one stopped halfway sends to the others); the last completes the alert. A channel
    ticked while paused gets its jobs; jobs an operator cancelled stay cancelled."""
    occurrence = Occurrence.objects.filter(alert=alert, scheduled_for=alert.send_at).first()
    if occurrence is None:
        return
    requests = occurrence_job_requests(alert, occurrence, alert.recipients.count())
    planned = [(job, request["eta"]) for job, request in zip(jobs_enqueue(requests), requests, strict=True)]
    # A job for one contact (after quiet hours, a fallback) follows a delivery that began: it goes on too.
    follow_ups = jobs_for_target(alert).filter(unique_key__startswith=f"occurrence:{occurrence.pk}:",
                                               unique_key__contains=":contact:", state=State.ABORTED)  # fmt: skip
    for job, eta in [*planned, *((job, None) for job in follow_ups)]:
        if job.state == State.ABORTED:
            job_retry_aborted(job_id=job.pk, reason="the alert was resumed", eta=eta)


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
