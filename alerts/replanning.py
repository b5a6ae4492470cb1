"""Re-planning an alert after an edit or a resume: which occurrences to come and which of their jobs stay,
where planning goes on, and what a resumed one-off sends. Called by ``alerts.services`` under the alert's
row lock."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from alerts import schedules
from alerts.models import Alert, AlertState, Channel, Occurrence, ScheduleKind
from alerts.planner import alert_plan, due_after, is_due_time, occurrence_job_key, occurrence_job_requests
from scheduler.models import WAITING_STATES, State
from scheduler.selectors import jobs_for_target
from scheduler.services import job_cancel, job_retry_aborted, jobs_enqueue


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


def replan(alert: Alert, *, now: datetime, previous: datetime | None) -> Occurrence | None:
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


def one_off_resume(alert: Alert) -> None:
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


def resumed_as_job_stopped(*, alert: Alert, job_id: int) -> bool:
    """Whether a one-off alert that a job of it read as paused (and aborted for) is active again: then the
    job runs again. The resume found it still running and left it to this check (``one_off_resume`` retries
    only aborted jobs); taken under the alert's row lock, which the resume holds until it commits, so that
    one of the two gives the job its attempt, never neither."""
    with transaction.atomic():
        state = Alert.objects.select_for_update().values_list("state", flat=True).get(pk=alert.pk)
        if state != AlertState.ACTIVE:
            return False
        job_retry_aborted(job_id=job_id, reason="the alert was resumed as this job stopped")
        return True
