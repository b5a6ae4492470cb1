"""Template tags of the alerts app: where an escalation step's occurrence stands, for the job page's panel."""

from __future__ import annotations

from django import template

from alerts.escalation import occurrence_walk_status
from alerts.models import Occurrence

register = template.Library()


@register.simple_tag
def escalation_status(job) -> str:
    """ "Step 2 of 3, next at 09:20 UTC" for a job of an escalation step; empty for any other job."""
    if not job.kwargs.get("escalation_step") or not job.args:
        return ""
    occurrence = Occurrence.objects.select_related("alert").filter(pk=job.args[0]).first()
    status = occurrence_walk_status(occurrence) if occurrence is not None else None
    if status is None:
        return ""
    this = f"step {job.kwargs['escalation_step']}"
    if status.rounds > 1:
        this += f" of round {job.kwargs.get('escalation_round', 1)}"
    when = f"{occurrence.scheduled_for:%Y-%m-%d %H:%M} UTC"
    return f"Escalation of the occurrence at {when}: {status}. This job is {this}."
