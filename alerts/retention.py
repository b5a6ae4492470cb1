"""Retention of the alerts app's own records: occurrences with their deliveries, and the SMS sink.

Called by the engine's retention (``scheduler/retention.py``) through ``JOB_RETENTION_PRUNERS``, with its
policy: the same ages and batches as jobs. An occurrence goes, with its deliveries, only when all hold:

- it was due longer ago than ``JOB_RETENTION_DAYS``, or ``JOB_FAILED_RETENTION_DAYS`` when one of its
  deliveries ended failed, undelivered or unknown (trouble is kept as long as failed jobs);
- none of its deliveries is still pending or sending (an attempt may still settle it);
- none of its delivery jobs (a share's, an escalation step's included) is waiting or running (the job
  re-fetches its occurrence when it runs);
- none of its SMS deliveries is the latest one to its contact while its alert is neither acknowledged
  nor cancelled: an ``ACK`` reply acknowledges the alert of the latest SMS sent to that phone, so that
  one stays, however old, until a newer SMS replaces it or the alert no longer waits for an answer.

SMS in the local sink are kept ``JOB_RETENTION_DAYS`` after they were written. Alerts, contacts and
acknowledgement links are never pruned here (a link carries the alert's id, not an occurrence's).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q

from alerts.models import AlertState, Channel, Delivery, DeliveryState, Occurrence, SmsSinkMessage
from scheduler.models import ACTIVE_STATES, Job
from scheduler.retention import Deadline, Policy, delete_in_batches

TROUBLE = [DeliveryState.FAILED, DeliveryState.UNDELIVERED, DeliveryState.UNKNOWN]
UNSETTLED = [DeliveryState.PENDING, DeliveryState.SENDING]
# Alerts that no longer wait for an acknowledgement.
ANSWERED = [AlertState.ACKNOWLEDGED, AlertState.CANCELLED]


def _job_key(occurrence_id: int, channel: str) -> str:
    # The unique key alerts.services.occurrence_enqueue gives each delivery job of an occurrence.
    return f"occurrence:{occurrence_id}:{channel}"


def prunable_occurrences(*, now: datetime, policy: Policy):
    troubled = Delivery.objects.filter(occurrence=OuterRef("pk"), state__in=TROUBLE)
    unsettled = Delivery.objects.filter(occurrence=OuterRef("pk"), state__in=UNSETTLED)
    return Occurrence.objects.filter(
        Q(scheduled_for__lt=now - policy.failed_retention)
        | Q(scheduled_for__lt=now - policy.retention) & ~Exists(troubled)
    ).exclude(Exists(unsettled))


def occurrences_still_needed(ids: list[int]) -> set[int]:
    """Of ``ids``, the occurrences an active job or an unanswered alert still needs (see the module)."""
    keys = {_job_key(pk, channel): pk for pk in ids for channel in Channel.values}
    active = Job.objects.filter(unique_key__in=keys, state__in=ACTIVE_STATES).values_list("unique_key", flat=True)
    needed = {keys[key] for key in active}
    # A fan-out's jobs ("occurrence:<id>:<channel>:share:<i>:of:<n>", alerts/fanout.py) and an escalation's
    # steps ("occurrence:<id>:<channel>:round:<r>:step:<s>", alerts/escalation.py): few are active at once.
    planned = Job.objects.filter(Q(unique_key__contains=":share:") | Q(unique_key__contains=":round:"),
                                 unique_key__startswith="occurrence:", state__in=ACTIVE_STATES)  # fmt: skip
    needed |= {int(key.split(":")[1]) for key in planned.values_list("unique_key", flat=True)} & set(ids)
    newer = Delivery.objects.filter(contact=OuterRef("contact"), channel=Channel.SMS).filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
    )
    latest = (
        Delivery.objects.filter(occurrence_id__in=ids, channel=Channel.SMS)
        .exclude(occurrence__alert__state__in=ANSWERED)
        .exclude(Exists(newer))
        .values_list("occurrence_id", flat=True)
    )
    return needed | set(latest)


def prune(*, now: datetime, policy: Policy, dry_run: bool, deadline: Deadline) -> dict[str, int]:
    occurrences = prunable_occurrences(now=now, policy=policy)
    sink = SmsSinkMessage.objects.filter(created_at__lt=now - policy.retention)
    if dry_run:
        counts = {"occurrences": 0, "deliveries": 0}
        last = 0
        while batch := list(
            occurrences.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[: policy.batch_size]
        ):
            last = batch[-1]
            doomed = set(batch) - occurrences_still_needed(batch)
            counts["occurrences"] += len(doomed)
            counts["deliveries"] += Delivery.objects.filter(occurrence_id__in=doomed).count()
        return {**counts, "SMS sink messages": sink.count()}
    counts = {"occurrences": 0, "deliveries": 0, "SMS sink messages": 0}
    for deleted in delete_in_batches(
        occurrences, batch_size=policy.batch_size, deadline=deadline, keep=occurrences_still_needed
    ):
        counts["occurrences"] += deleted.get(Occurrence._meta.label, 0)
        counts["deliveries"] += deleted.get(Delivery._meta.label, 0)
    for deleted in delete_in_batches(sink, batch_size=policy.batch_size, deadline=deadline):
        counts["SMS sink messages"] += deleted.get(SmsSinkMessage._meta.label, 0)
    return counts
