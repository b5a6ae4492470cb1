"""Escalation: an occurrence walks its alert's policy, one tracked job per step, round and channel.

The walk is planned when the occurrence is: every step of every round is a job of its own, due at the
occurrence time plus the waits of the steps before it, so the job pages show what is to come, a cancel
reaches every step, and a retried step finds its own delivery rows. Each step's job re-reads the occurrence
first: acknowledged, it aborts saying by whom and when, which is how an acknowledgement stops the walk.
Who a step notifies is read when it runs (a policy edit reaches the steps still to come); when it runs was
fixed when the occurrence was planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from alerts.models import Alert, Contact, DeliveryState, EscalationPolicy, EscalationStep, Occurrence
from scheduler.models import WAITING_STATES, Job
from scheduler.selectors import jobs_for_target


@dataclass(frozen=True, order=True)
class Stage:
    """Where a delivery stands in an occurrence's walk: round and step, from 1; (0, 0) without a policy."""

    round: int = 0
    step: int = 0

    def __bool__(self) -> bool:
        return self.step > 0

    @property
    def job_kwargs(self) -> dict[str, int]:
        return {"escalation_round": self.round, "escalation_step": self.step} if self else {}

    @property
    def delivery_fields(self) -> dict[str, int]:
        return {"escalation_round": self.round, "escalation_step": self.step}

    @property
    def key_suffix(self) -> str:
        return f":round:{self.round}:step:{self.step}" if self else ""

    @classmethod
    def of(cls, delivery) -> Stage:
        return cls(delivery.escalation_round, delivery.escalation_step)


NO_STAGE = Stage()


@dataclass(frozen=True)
class PlannedStep:
    stage: Stage
    eta: datetime
    channels: tuple[str, ...]


def walk_plan(*, steps: list[EscalationStep], repeat: int, start: datetime) -> list[PlannedStep]:
    """Every step of every round (``repeat`` + 1 rounds) with its due time: ``start`` plus the waits before it."""
    if repeat < 0:
        raise ValueError(f"repeat must be 0 or more, not {repeat}")
    planned = []
    eta = start
    for round_number in range(1, repeat + 2):
        for step in sorted(steps, key=lambda s: s.position):
            planned.append(PlannedStep(Stage(round_number, step.position), eta, tuple(step.channels)))
            eta += timedelta(minutes=step.wait_minutes)
    return planned


def policy_plan(policy: EscalationPolicy, start: datetime) -> list[PlannedStep]:
    return walk_plan(steps=list(policy.steps.all()), repeat=policy.repeat, start=start)


def step_label(alert: Alert, stage: Stage, channel: str, *, steps: int, rounds: int) -> str:
    where = f"step {stage.step} of {steps}" + (f", round {stage.round} of {rounds}" if rounds > 1 else "")
    return f"{alert.name} · {channel} · {where}"


def stage_step(alert: Alert, stage: Stage) -> EscalationStep | str:
    """The policy step a job of ``stage`` delivers, read now; or why there is none any more."""
    if alert.escalation_policy_id is None:
        return "the alert no longer has an escalation policy"
    step = EscalationStep.objects.filter(policy_id=alert.escalation_policy_id, position=stage.step).first()
    if step is None:
        return f"the escalation policy has no step {stage.step} any more"
    return step


def step_recipients(alert: Alert, step: EscalationStep) -> list[Contact]:
    """The step's contacts and, if it says so, the alert's recipients; each once, by name."""
    contacts = {c.pk: c for c in step.contacts.all()}
    if step.notify_alert_recipients:
        contacts.update({c.pk: c for c in alert.recipients.all()})
    return sorted(contacts.values(), key=lambda c: (c.name, c.pk))


def stage_channels(alert: Alert, stage: Stage) -> list[str]:
    """The channels a delivery of ``stage`` goes out on: its step's, or the alert's without a policy."""
    if not stage:
        return alert.channels
    step = stage_step(alert, stage)
    return step.channels if isinstance(step, EscalationStep) else []


# --- Where an occurrence stands ---------------------------------------------------------------------------

SENT_STATES = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.UNKNOWN, DeliveryState.SENDING)


def _stage_of_job(job: Job) -> Stage:
    return Stage(int(job.kwargs.get("escalation_round", 0)), int(job.kwargs.get("escalation_step", 0)))


def occurrence_step_jobs(occurrence: Occurrence) -> list[Job]:
    """The jobs of the occurrence's walk, one per step, round and channel (not the quiet-hours or fallback
    jobs a step may add for one contact)."""
    prefix = f"occurrence:{occurrence.pk}:"
    jobs = jobs_for_target(occurrence.alert).filter(unique_key__startswith=prefix, unique_key__contains=":round:")
    return [job for job in jobs.exclude(unique_key__contains=":contact:") if _stage_of_job(job)]


@dataclass(frozen=True)
class WalkStatus:
    steps: int
    rounds: int
    reached: Stage | None  # the last step that sent something
    next_at: datetime | None  # the next step's time, while the walk goes on
    acknowledged: str | None
    aborted: int

    def __str__(self) -> str:
        parts = []
        if self.reached is None:
            parts.append("no step sent yet")
        else:
            parts.append(f"step {self.reached.step} of {self.steps}")
            if self.rounds > 1:
                parts[-1] = f"round {self.reached.round} of {self.rounds}, {parts[-1]}"
        if self.acknowledged:
            parts.append(self.acknowledged.removeprefix("occurrence "))
            if self.aborted:
                parts.append(f"{self.aborted} step job(s) aborted")
        elif self.next_at is not None:
            parts.append(f"next at {self.next_at:%H:%M} UTC")
        else:
            parts.append("no step to come, not acknowledged")
        return ", ".join(parts)


def occurrence_walk_status(occurrence: Occurrence) -> WalkStatus | None:
    """Where the occurrence's escalation stands, e.g. "step 2 of 3, next at 09:20 UTC"; ``None`` if it has
    no walk (its alert had no policy when it was planned)."""
    jobs = occurrence_step_jobs(occurrence)
    if not jobs:
        return None
    stages = sorted({_stage_of_job(job) for job in jobs})
    rounds = max(stage.round for stage in stages)
    sent = occurrence.deliveries.filter(state__in=SENT_STATES).filter(~Q(escalation_step=0))
    reached = max((Stage(r, s) for r, s in sent.values_list("escalation_round", "escalation_step")), default=None)
    waiting = [job.eta for job in jobs if job.state in WAITING_STATES]
    return WalkStatus(
        steps=len({stage.step for stage in stages}),
        rounds=rounds,
        reached=reached,
        next_at=min(waiting, default=None),
        acknowledged=occurrence.acknowledgement_reason(),
        aborted=sum(1 for job in jobs if job.state == "aborted"),
    )


def occurrence_to_acknowledge(alert: Alert, *, now: datetime) -> Occurrence | None:
    """The occurrence an acknowledgement of the whole alert means: the latest one due (acknowledged or not:
    acknowledging twice changes nothing, and never reaches back to an older walk that has ended)."""
    return Occurrence.objects.filter(alert=alert, scheduled_for__lte=now).order_by("-scheduled_for").first()
