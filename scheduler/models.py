"""The job: one tracked run of a background task, with its lifecycle and timeline."""

from __future__ import annotations

import time
from datetime import timedelta

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class State(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"  # waiting for its time in the database, not in the broker
    QUEUED = "queued", "Queued"  # published to the broker
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Retrying"  # an attempt failed; the next one is scheduled
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    ABORTED = "aborted", "Aborted"  # the task found the work no longer needed
    # Over, but not known to have done its work (e.g. a delivery that may not have gone out): an operator
    # resends it or marks it settled.
    ATTENTION = "attention", "Needs attention"


WAITING_STATES = frozenset({State.SCHEDULED, State.QUEUED, State.RETRYING})
ACTIVE_STATES = WAITING_STATES | {State.RUNNING}
FINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.ABORTED, State.ATTENTION})
# Outcomes an operator is told about until they have looked at the job (the header's counters).
UNSEEN_RESULT_STATES = frozenset({State.SUCCEEDED, State.FAILED})


class EventKind(models.TextChoices):
    # Celery's task event names, plus the engine's own.
    SCHEDULED = "scheduled", "Scheduled"
    SENT = "sent", "Sent"
    RECEIVED = "received", "Received"
    STARTED = "started", "Started"
    PROGRESS = "progress", "Progress"
    RETRIED = "retried", "Retried"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REVOKED = "revoked", "Revoked"
    CANCELLED = "cancelled", "Cancelled"
    ABORTED = "aborted", "Aborted"
    RECOVERED = "recovered", "Recovered"
    ATTENTION = "attention", "Needs attention"
    SETTLED = "settled", "Settled"


class Job(models.Model):
    task_name = models.CharField(max_length=200)
    # What the job is about, for people: set by the enqueuing code (e.g. an alert's name and channels).
    label = models.CharField(max_length=200, blank=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=100)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SCHEDULED)

    # When the current attempt is due, and when its message was published (NULL: waiting in the database).
    eta = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    # The id of the current attempt's Celery message: a claim must present it, so a stale or
    # duplicated message of an earlier attempt cannot start a later one.
    celery_task_id = models.CharField(max_length=36, blank=True)
    # Deduplicates enqueues of the same piece of work (e.g. one occurrence of a recurring alert).
    # NULL, not "", for no key: the unique constraint (Meta) ignores NULLs.
    unique_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001

    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    retry_delay = models.DurationField()

    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    runtime = models.DurationField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)

    status_message = models.CharField(max_length=500, blank=True)
    progress = models.FloatField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    result = models.JSONField(null=True, blank=True)
    seen = models.BooleanField(default=False)

    # Indexed by ``job_target``, which begins with it.
    target_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    target_id = models.CharField(max_length=64, blank=True)
    target = GenericForeignKey("target_type", "target_id")

    class Meta:
        ordering = ["-modified_at", "-id"]
        indexes = [
            models.Index(fields=["-modified_at", "-id"], name="job_recent"),
            models.Index(fields=["state", "-modified_at", "-id"], name="job_state_recent"),
            models.Index(fields=["task_name", "-modified_at", "-id"], name="job_task_recent"),
            models.Index(fields=["target_type", "target_id", "-modified_at"], name="job_target"),
            # A state change writes an entry into every index a row is in (it can never be a HOT update), so
            # the engine's own indexes are few and partial where they can be: cancelling 100,000 jobs
            # is one UPDATE that spends most of its time here. No ``varchar_pattern_ops`` twins (nothing
            # searches task ids or keys by prefix), ``job_target`` serves the target type's lookups, and
            # no index of task ids: every lookup of one has the job's id too (a message carries it).
            # The dispatcher's and the sweep's scans.
            models.Index(
                fields=["state", "eta"], name="job_waiting_eta", condition=models.Q(state__in=sorted(WAITING_STATES))
            ),
            models.Index(fields=["lease_expires_at"], name="job_running_lease", condition=models.Q(state="running")),
            # The job pages (scheduler/selectors.py). Partial indexes stay small: active jobs are few, and
            # the unseen results shrink as operators look at them. They serve the header's capped counters
            # and the list filtered on them, in the list's keyset order.
            models.Index(
                fields=["-modified_at", "-id"],
                name="job_active_recent",
                condition=models.Q(state__in=sorted(ACTIVE_STATES)),
            ),
            models.Index(
                fields=["state", "-modified_at", "-id"],
                name="job_unseen_recent",
                condition=models.Q(seen=False, state__in=sorted(UNSEEN_RESULT_STATES)),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(max_attempts__gte=1), name="job_max_attempts_positive"),
            models.UniqueConstraint(fields=["unique_key"], name="job_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} #{self.pk} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_waiting(self) -> bool:
        return self.state in WAITING_STATES

    @property
    def is_unseen_result(self) -> bool:
        """A success or failure nobody has looked at yet: highlighted in the list, counted in the header."""
        return self.state in UNSEEN_RESULT_STATES and not self.seen

    @property
    def display_name(self) -> str:
        return self.label or self.task_name

    @property
    def elapsed(self) -> timedelta | None:
        """How long the current or last attempt ran: its runtime once over, the time so far while running."""
        if self.state == State.RUNNING and self.started_at:
            return max(timezone.now() - self.started_at, timedelta(0))
        return self.runtime

    @property
    def last_error(self) -> dict | None:
        return self.errors[-1] if self.errors else None

    # Like Celery's AsyncResult, read from the row: the job returned by scheduling is its own handle.

    def ready(self) -> bool:
        return self.is_final

    def successful(self) -> bool:
        return self.state == State.SUCCEEDED

    def wait(self, timeout: float, *, interval: float = 0.05) -> Job:
        """Reload the row until the job is final; raise ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.refresh_from_db()
            if self.is_final:
                return self
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.pk} is still {self.state} after {timeout}s")
            time.sleep(interval)


class JobEvent(models.Model):
    # Written only by scheduler.lifecycle, from the job row it changes in the same statement, and deleted
    # with its job by Django's cascade (job deletes and retention go through the ORM). So no index of its own
    # (the timeline's (job, at) serves every lookup by job) and no database constraint, whose deferred
    # check ran once per event at commit: a cancel-all writes 100,000 events in one statement (2.25 s ->
    # 1.7-2.0 s with both gone, docs/benchmarks.md), and every change of every job writes one.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    at = models.DateTimeField(default=timezone.now)
    hostname = models.CharField(max_length=255, blank=True)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["job", "at"], name="jobevent_timeline")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"
