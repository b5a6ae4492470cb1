"""Batch actions on every job the list's filters match: retry them, or cancel them (Oban Web, Sidekiq).

The confirmation page counts what the action would touch, and the action runs on what matches when it is
confirmed, at most ``MAX_MATCHING`` jobs at a time (the page says so): each job goes through the same
service as a single retry or cancel, with its own event.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from scheduler import selectors, services
from scheduler.access import CHANGE_JOBS, operator_name, permission_required, staff_required
from scheduler.forms import JobFilterForm
from scheduler.models import ACTIVE_STATES, State

MAX_MATCHING = 10_000
ACTIONS = {
    # action: (the states it applies to, verb, what it does)
    "cancel": (
        ACTIVE_STATES,
        "Cancel",
        "The waiting ones will not run, and running ones stop at their next check. Jobs that are over are left "
        "as they are. This cannot be undone.",
    ),
    "retry": (
        frozenset({State.FAILED, State.ATTENTION}),
        "Retry",
        "Each failed job (or job that needs attention) gets one more attempt, due now. The others are left as "
        "they are.",
    ),
}


def _plural(count: int) -> str:
    return f"{count} job{'s' if count != 1 else ''}"


@require_http_methods(["GET", "POST"])
@staff_required
@permission_required(CHANGE_JOBS)
def jobs_matching(request: HttpRequest, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(f"no batch action {action!r}")
    states, verb, explanation = ACTIONS[action]
    form = JobFilterForm(request.GET)
    filters = form.filters()
    list_url = f"{reverse('scheduler:job_list')}?{request.GET.urlencode()}"
    if not filters.any:
        messages.error(request, "Filter the list first: a batch action applies to the jobs the filters match.")
        return redirect(list_url)
    matching = selectors.jobs_filtered(filters).filter(state__in=sorted(states)).order_by("pk")
    ids = list(matching.values_list("pk", flat=True)[: MAX_MATCHING + 1])
    capped, ids = len(ids) > MAX_MATCHING, ids[:MAX_MATCHING]
    if request.method == "GET":
        if not ids:
            messages.info(
                request, f"No job matching these filters can be {'cancelled' if action == 'cancel' else 'retried'}."
            )
            return redirect(list_url)
        limit = f" The first {MAX_MATCHING:,} are done now; repeat for the rest." if capped else ""
        return render(request, "scheduler/confirm.html", {
            "title": f"{verb} {'more than ' if capped else ''}{_plural(len(ids))} matching the filters?",
            "explanation": explanation + limit,
            "count": len(ids),
            "action_url": request.get_full_path(),
            "button": f"{verb} {_plural(len(ids))}",
            "back_url": list_url,
        })  # fmt: skip
    if action == "cancel":
        reason = f"cancelled by {operator_name(request)} (batch, matching filters)"
        done = sum(services.job_cancel(job_id=pk, reason=reason) for pk in ids)
    else:
        done = sum(services.job_run_now(job_id=pk) for pk in ids)
    past = "Cancelled" if action == "cancel" else "Retrying"
    messages.success(request, f"{past} {_plural(done)} matching the filters.")
    return redirect(list_url)
