"""Retention: finished jobs and their timelines are deleted once they are old enough (Oban's Pruner).

A job is prunable when it is final and its last state change (``modified_at``) is older than
``JOB_RETENTION_DAYS`` (succeeded, cancelled, aborted), or ``JOB_FAILED_RETENTION_DAYS`` (failed, and
needing attention: an outcome nobody resolved, whose work may not have been done, is kept as long as a
failure, as the alerts app keeps an occurrence with an unknown delivery). A job that is waiting or running
is never deleted, whatever its age.

Deletion goes in batches of ``JOB_PRUNE_BATCH_SIZE`` jobs, each in a short transaction of its own, so
that the job pages, the workers and the dispatcher never wait behind a long delete; on PostgreSQL the
rows of a batch are taken with ``FOR UPDATE SKIP LOCKED``, so two prunes at once (two beats, the command
beside the periodic task) share the work instead of queueing, and a job being changed right now is left
for the next run. Related rows follow Django's ``on_delete`` rules (events are deleted; an app's rows that
point at a job with ``SET_NULL`` keep their own record).

Other apps prune their own rows the same way through ``JOB_RETENTION_PRUNERS``: dotted paths of
functions called after the jobs with the same arguments as ``prune_jobs`` here, each returning its counts
by kind. The engine imports them by name, so it never imports the apps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from scheduler.models import FINAL_STATES, Job, JobEvent, State

logger = logging.getLogger(__name__)

# The periodic task stops after this long and leaves the rest to its next run: a first prune of months
# of history must not hold a maintenance worker (and the dispatcher's ticks behind it) for an hour.
PERIODIC_TIME_BUDGET = timedelta(minutes=5)


@dataclass(frozen=True)
class Policy:
    """How long finished rows are kept, and how many go per transaction."""

    retention: timedelta
    failed_retention: timedelta
    batch_size: int

    @classmethod
    def from_settings(cls, *, days: int | None = None, failed_days: int | None = None) -> Policy:
        return cls(
            retention=timedelta(days=settings.JOB_RETENTION_DAYS if days is None else days),
            failed_retention=timedelta(days=settings.JOB_FAILED_RETENTION_DAYS if failed_days is None else failed_days),
            batch_size=settings.JOB_PRUNE_BATCH_SIZE,
        )


@dataclass
class PruneReport:
    dry_run: bool = False
    # Rows deleted (or, in a dry run, that would be) by kind, in the order they were pruned.
    counts: dict[str, int] = field(default_factory=dict)
    # False when the time budget ran out first: the rest is left for the next run.
    complete: bool = True

    def add(self, counts: dict[str, int]) -> None:
        for kind, number in counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + number

    @property
    def deleted(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        parts = ", ".join(f"{number:,} {kind}" for kind, number in self.counts.items()) or "nothing"
        return f"{verb} {parts}" + ("" if self.complete else " (time budget used up: the rest on the next run)")


class Deadline:
    """A time budget shared by the pruners of one run; no budget: never expires."""

    def __init__(self, seconds: float | None = None) -> None:
        self._end = None if seconds is None else time.monotonic() + seconds

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


Pruner = Callable[..., dict[str, int]]


def pruners() -> list[Pruner]:
    return [import_string(path) for path in settings.JOB_RETENTION_PRUNERS]


def prune(
    *, now: datetime | None = None, policy: Policy | None = None, dry_run: bool = False, budget: float | None = None
) -> PruneReport:
    """Delete (or count, with ``dry_run``) what every app and the engine no longer keep."""
    now = now or timezone.now()
    policy = policy or Policy.from_settings()
    deadline = Deadline(budget)
    report = PruneReport(dry_run=dry_run)
    for pruner in [prune_jobs, *pruners()]:
        report.add(pruner(now=now, policy=policy, dry_run=dry_run, deadline=deadline))
        if deadline.expired():
            report.complete = False
            break
    return report


# Outcomes that may still need an operator: kept for the failed retention.
TROUBLE_STATES = frozenset({State.FAILED, State.ATTENTION})


def prunable_jobs(*, now: datetime, policy: Policy) -> QuerySet[Job]:
    return Job.objects.filter(
        Q(state__in=sorted(FINAL_STATES - TROUBLE_STATES), modified_at__lt=now - policy.retention)
        | Q(state__in=sorted(TROUBLE_STATES), modified_at__lt=now - policy.failed_retention)
    )


def prune_jobs(*, now: datetime, policy: Policy, dry_run: bool, deadline: Deadline) -> dict[str, int]:
    candidates = prunable_jobs(now=now, policy=policy)
    if dry_run:
        return {"jobs": candidates.count(), "job events": JobEvent.objects.filter(job__in=candidates).count()}
    counts = {"jobs": 0, "job events": 0}
    for deleted in delete_in_batches(candidates, batch_size=policy.batch_size, deadline=deadline):
        counts["jobs"] += deleted.get(Job._meta.label, 0)
        counts["job events"] += deleted.get(JobEvent._meta.label, 0)
    return counts


def delete_in_batches(
    candidates: QuerySet, *, batch_size: int, deadline: Deadline, keep: Callable[[list], set] | None = None
) -> Iterator[dict[str, int]]:
    """Delete ``candidates`` a batch at a time, each in its own transaction; yield Django's counts per batch.

    ``keep(ids)`` returns the ids of a batch that must stay after all (checked inside the transaction);
    they are stepped over by a keyset on the primary key, so a kept row is looked at once per run.
    """
    model = candidates.model
    last = None
    while not deadline.expired():
        with transaction.atomic():
            batch = candidates.order_by("pk")
            if last is not None:
                batch = batch.filter(pk__gt=last)
            if connection.features.has_select_for_update_skip_locked:
                batch = batch.select_for_update(skip_locked=True, of=("self",))
            ids = list(batch.values_list("pk", flat=True)[:batch_size])
            if not ids:
                return
            last = ids[-1]
            doomed = sorted(set(ids) - (keep(ids) if keep else set()))
            if doomed:
                _, per_model = model.objects.filter(pk__in=doomed).delete()
                yield per_model
