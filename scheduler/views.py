"""The job pages: /jobs (the list, live) and /jobs/<id> (one job, live), and the operators' actions.

Reads go through ``selectors``, state changes through ``services``. Staff only, and the actions also need the
job model's change (cancel, run now, settle) or delete permission; every action is a POST with CSRF, and the
destructive ones (cancel, delete, cancel all, bulk) show a confirmation page first.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import select_template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from scheduler import selectors, services
from scheduler.access import (
    CHANGE_JOBS,
    DELETE_JOBS,
    operator_name,
    permission_required,
    require_permission,
    staff_required,
)
from scheduler.forms import BulkActionForm, CancelAllForm, JobFilterForm
from scheduler.models import Job, State
from scheduler.publishing import UNPUBLISHED_STATES

logger = logging.getLogger(__name__)

# Columns the actions need to decide and to describe the job in a message.
ACTION_COLUMNS = ("id", "task_name", "label", "state", "published_at", "seen")
# How often the pages ask for news while something is waiting or running (seconds).
LIST_POLL_SECONDS = 2
JOB_POLL_SECONDS = 1
# htmx stops polling when a poll is answered with this status (the job was deleted meanwhile).
HTMX_STOP_POLLING = 286


def _next_url(request: HttpRequest, fallback: str) -> str:
    """The ``next`` the form carried (the list with its filters), if it is a page of this site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _back_to(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(_next_url(request, fallback))


# --- The list --------------------------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, object]:
    form = JobFilterForm(request.GET)
    filters = form.filters()
    after, before = form.cursors()
    return {
        "form": form,
        "filters": filters,
        "page": selectors.jobs_page(filters, after=after, before=before),
        "poll_seconds": LIST_POLL_SECONDS,
    }


@require_GET
@staff_required
def job_list(request: HttpRequest) -> HttpResponse:
    context = _list_context(request)
    context["task_names"] = selectors.task_names()
    return render(request, "scheduler/job_list.html", context)


@require_GET
@staff_required
def job_rows(request: HttpRequest) -> HttpResponse:
    """The list's table and the header's counters, polled by the list while anything is active."""
    return render(request, "scheduler/job_rows_live.html", _list_context(request))


# --- One job ---------------------------------------------------------------------------------------------


def _admin_change_url(app_label: str, model: str, object_id: object) -> str | None:
    try:
        return reverse(f"admin:{app_label}_{model}_change", args=[object_id])
    except NoReverseMatch:
        return None


def _target_panel(request: HttpRequest, job: Job) -> str:
    """The panel the target's app provides for its jobs, ``<app_label>/<model>_job_panel.html``, if any.

    This is how an alert's job shows its deliveries while the engine knows nothing about alerts.
    """
    if job.target_type_id is None:
        return ""
    content_type = job.target_type
    try:
        panel = select_template([f"{content_type.app_label}/{content_type.model}_job_panel.html"])
    except TemplateDoesNotExist:
        return ""
    try:
        return panel.render({"job": job, "target": job.target}, request)
    except Exception:
        # Another app's panel must not take the job's page down: that page is where failures are understood.
        logger.exception("the job panel %s failed for job %s", panel.template.name, job.pk)
        return format_html(
            '<p class="message message-error">The panel of {}.{} could not be shown.</p>',
            content_type.app_label,
            content_type.model,
        )


def _job_context(request: HttpRequest, job: Job) -> dict[str, object]:
    target = job.target if job.target_type_id else None
    return {
        "job": job,
        "target": target,
        "target_admin_url": (
            _admin_change_url(job.target_type.app_label, job.target_type.model, job.target_id) if target else None
        ),
        "target_panel": _target_panel(request, job),
        "can_run_now": job.state in UNPUBLISHED_STATES and job.published_at is None,
        "poll_seconds": JOB_POLL_SECONDS,
    }


@require_GET
@staff_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        job = selectors.job_for_page(pk)
    except Job.DoesNotExist:
        raise Http404(f"There is no job #{pk}; it may have been deleted.") from None
    services.job_mark_seen(job=job)
    context = _job_context(request, job)
    context["job_admin_url"] = _admin_change_url("scheduler", "job", job.pk)
    return render(request, "scheduler/job_detail.html", context)


@require_GET
@staff_required
def job_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of a job's page, polled while the job is active; the job ends seen, as it was watched."""
    try:
        job = selectors.job_for_page(pk)
    except Job.DoesNotExist:
        return HttpResponse(status=HTMX_STOP_POLLING)
    services.job_mark_seen(job=job)
    return render(request, "scheduler/job_live.html", _job_context(request, job))


# --- Actions ---------------------------------------------------------------------------------------------


def _job_for_action(pk: int) -> Job:
    return get_object_or_404(Job.objects.only(*ACTION_COLUMNS), pk=pk)


def _confirm(request: HttpRequest, **context: object) -> HttpResponse:
    return render(request, "scheduler/confirm.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
@permission_required(CHANGE_JOBS)
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_for_action(pk)
    if request.method == "GET":
        if not job.is_active:
            messages.info(request, f"Job #{pk} is {job.state}: there is nothing to cancel.")
            return redirect("scheduler:job_detail", pk=pk)
        return _confirm(
            request,
            title=f"Cancel job #{pk}?",
            jobs=[job],
            explanation=(
                "A waiting job will not run. A running job stops at its next check; what it has already done "
                "stays done. This cannot be undone."
            ),
            action_url=reverse("scheduler:job_cancel", args=[pk]),
            button="Cancel the job",
            back_url=reverse("scheduler:job_detail", args=[pk]),
        )
    if services.job_cancel(job_id=pk, reason=f"cancelled by {operator_name(request)}"):
        messages.success(request, f"Job #{pk} cancelled.")
    else:
        messages.warning(request, f"Job #{pk} was no longer waiting or running: nothing was cancelled.")
    return redirect("scheduler:job_detail", pk=pk)


@require_POST
@staff_required
@permission_required(CHANGE_JOBS)
def job_run_now(request: HttpRequest, pk: int) -> HttpResponse:
    """Retry a failed job now (one more attempt), or run a job that waits in the database now."""
    job = _job_for_action(pk)
    retry = job.state in (State.FAILED, State.ATTENTION)
    if services.job_run_now(job_id=pk):
        messages.success(request, f"Job #{pk} will {'run again' if retry else 'run'} now.")
    else:
        messages.warning(request, f"Job #{pk} is {Job.objects.only('state').get(pk=pk).state}: it cannot be run now.")
    return redirect("scheduler:job_detail", pk=pk)


@require_POST
@staff_required
@permission_required(CHANGE_JOBS)
def job_settle(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark a job that needs attention as settled: an operator checked that its work is done."""
    _job_for_action(pk)
    if services.job_settle(job_id=pk, operator=operator_name(request)):
        messages.success(request, f"Job #{pk} marked settled.")
    else:
        messages.warning(request, f"Job #{pk} is {Job.objects.only('state').get(pk=pk).state}: nothing to settle.")
    return redirect("scheduler:job_detail", pk=pk)


@require_http_methods(["GET", "POST"])
@staff_required
@permission_required(DELETE_JOBS)
def job_delete(request: HttpRequest, pk: int) -> HttpResponse:
    list_url = reverse("scheduler:job_list")
    try:
        job = Job.objects.only(*ACTION_COLUMNS).get(pk=pk)
    except Job.DoesNotExist:
        messages.info(request, f"Job #{pk} no longer exists.")
        return redirect(list_url)
    if not job.is_final:
        messages.error(request, f"Job #{pk} is {job.state}: cancel it before deleting it.")
        return redirect("scheduler:job_detail", pk=pk)
    if request.method == "GET":
        return _confirm(
            request,
            title=f"Delete job #{pk}?",
            jobs=[job],
            explanation="The job, its timeline and its errors are removed for good.",
            action_url=reverse("scheduler:job_delete", args=[pk]),
            button="Delete the job",
            back_url=reverse("scheduler:job_detail", args=[pk]),
            next_url=list_url,
        )
    try:
        services.job_delete(job_id=pk)
    except services.JobNotDeletable as exc:
        messages.error(request, str(exc))
        return redirect("scheduler:job_detail", pk=pk)
    except Job.DoesNotExist:
        messages.info(request, f"Job #{pk} no longer exists.")
    else:
        messages.success(request, f"Job #{pk} deleted.")
    return _back_to(request, list_url)


@require_http_methods(["GET", "POST"])
@staff_required
@permission_required(CHANGE_JOBS)
def jobs_cancel_all(request: HttpRequest) -> HttpResponse:
    list_url = reverse("scheduler:job_list")
    form = CancelAllForm(request.POST if request.method == "POST" else None)
    if request.method == "GET" or not form.is_valid():
        count = selectors.jobs_active_count()
        if not count:
            messages.info(request, "No job is waiting or running: there is nothing to cancel.")
            return redirect(list_url)
        return _confirm(
            request,
            title=f"Cancel all {count} waiting and running job{'s' if count != 1 else ''}?",
            count=count,
            explanation=(
                "Every job that waits or runs right now is cancelled: none of the waiting ones will run, and "
                "running ones stop at their next check. This cannot be undone."
            ),
            form=form,
            action_url=reverse("scheduler:jobs_cancel_all"),
            button=f"Cancel {count} job{'s' if count != 1 else ''}",
            back_url=list_url,
        )
    cancelled = services.jobs_cancel_all(
        reason=f"cancelled by {operator_name(request)} (cancel all)", terminate=form.cleaned_data["terminate"]
    )
    messages.success(request, f"Cancelled {cancelled} job{'s' if cancelled != 1 else ''}.")
    return redirect(list_url)


@require_POST
@staff_required
def jobs_bulk(request: HttpRequest) -> HttpResponse:
    """Cancel or delete the jobs selected in the list: a confirmation page first, then the services."""
    list_url = reverse("scheduler:job_list")
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return _back_to(request, list_url)
    action, ids = form.cleaned_data["action"], form.cleaned_data["ids"]
    require_permission(request, CHANGE_JOBS if action == "cancel" else DELETE_JOBS)
    if not form.cleaned_data["confirmed"]:
        jobs = selectors.jobs_by_ids(ids)
        eligible = [job for job in jobs if (job.is_active if action == "cancel" else job.is_final)]
        verb = "Cancel" if action == "cancel" else "Delete"
        return _confirm(
            request,
            title=f"{verb} {len(eligible)} of the {len(ids)} selected job{'s' if len(ids) != 1 else ''}?",
            jobs=jobs,
            eligible={job.pk for job in eligible},
            explanation=(
                "Jobs that are waiting or running are cancelled; the others are left as they are."
                if action == "cancel"
                else "Jobs that are over are deleted with their timelines; jobs still waiting or running are kept."
            ),
            action_url=reverse("scheduler:jobs_bulk"),
            hidden={"action": action, "confirmed": "on"},
            ids=ids,
            button=f"{verb} {len(eligible)} job{'s' if len(eligible) != 1 else ''}",
            disabled=not eligible,
            back_url=_next_url(request, list_url),
            next_url=_next_url(request, list_url),
        )
    if action == "cancel":
        reason = f"cancelled by {operator_name(request)}"
        done = sum(services.job_cancel(job_id=pk, reason=reason) for pk in ids)
        _report(request, f"Cancelled {done} job{'s' if done != 1 else ''}.", len(ids) - done, "no longer active")
    else:
        done = kept = 0
        for pk in ids:
            try:
                services.job_delete(job_id=pk)
                done += 1
            except services.JobNotDeletable:
                kept += 1
            except Job.DoesNotExist:
                pass  # deleted meanwhile: what was asked for
        _report(request, f"Deleted {done} job{'s' if done != 1 else ''}.", kept, "still waiting or running, kept")
    return _back_to(request, list_url)


def _report(request: HttpRequest, done: str, skipped: int, why: str) -> None:
    if skipped:
        messages.warning(request, f"{done} {skipped} left alone ({why}).")
    else:
        messages.success(request, done)
