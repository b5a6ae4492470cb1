"""The admin of alerts: the schedule form with its next due times, the actions, the alert's jobs."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from alerts import schedules, services
from alerts.escalation import occurrence_walk_status
from alerts.forms import AlertForm, schedule_errors, unsaved_alert
from alerts.message_preview import MESSAGE_FIELDS, message_preview_html
from alerts.models import (
    Alert,
    Contact,
    Occurrence,
)
from alerts.schedules import alert_due_times
from scheduler.admin import CheckedActionsAdmin
from scheduler.templatetags.scheduler_tags import timetag


def _jobs_url(alert: Alert) -> str:
    return reverse("scheduler:job_list") + "?" + urlencode({"target": f"alerts.alert:{alert.pk}"})


def _due_times_html(alert: Alert, times) -> str:
    if not times:
        return "No occurrence to come."
    return format_html(
        "<ol class='occurrences'>{}</ol>",
        format_html_join(
            "",
            "<li>{} <small>({} UTC)</small></li>",
            (
                (f"{schedules.wall_clock(t, alert.timezone):%a %Y-%m-%d %H:%M} {alert.timezone}", f"{t:%H:%M}")
                for t in times
            ),
        ),
    )


@admin.register(Alert)
class AlertAdmin(CheckedActionsAdmin):
    form = AlertForm
    list_display = ("name", "state", "schedule_kind", "channel_list", "recipient_count", "next_due", "jobs_link")
    list_filter = ("state", "schedule_kind", "send_sms", "send_email", "send_webhook")
    search_fields = ("name", "message")
    filter_horizontal = ("recipients",)
    readonly_fields = ("state", "next_occurrences", "links", "message_preview", "escalation_status")
    actions = ["send_now", "pause", "resume", "cancel", "duplicate"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "message",
                    ("send_sms", "send_email", "send_webhook"),
                    "fallback_to_other_channel",
                    "urgent",
                    "recipients",
                    "state",
                    "links",
                ),
            },
        ),
        (
            "Texts per channel",
            {
                "fields": ("sms_text", "email_subject", "email_body", "message_preview"),
                "description": "Each falls back to the message (the subject to the alert's name). The preview "
                "follows your typing, for the first recipient chosen (or a sample contact).",
            },
        ),
        (
            "Schedule",
            {
                "fields": ("timezone", "schedule_kind"),
                "description": "Times are read in the alert's timezone. The preview below follows your edits.",
            },
        ),
        # One fieldset per kind: alerts/alert_form.js shows the chosen one only (all of them without JavaScript).
        ("Once", {"fields": (("send_at", "send_if_past"),), "classes": ("schedule-kind", "kind-once")}),
        (
            "Relative time",
            {"fields": ("relative_base", "relative_spec"), "classes": ("schedule-kind", "kind-relative")},
        ),
        ("Crontab", {"fields": ("crontab",), "classes": ("schedule-kind", "kind-crontab")}),
        (
            "Interval",
            {
                "fields": (("interval_every", "interval_unit"), "starts_at"),
                "classes": ("schedule-kind", "kind-interval"),
            },
        ),
        (
            "Escalation",
            {
                "fields": ("escalation_policy", "escalation_status"),
                "description": "With a policy, each occurrence notifies its steps' contacts on its steps' channels, "
                "step after step, until someone acknowledges it; the recipients and channels above serve only "
                "the steps that name “the alert's recipients”.",
            },
        ),
        ("Expiry and next occurrences", {"fields": ("expires_at", "next_occurrences")}),
        ("Retries", {"fields": ("max_attempts", "retry_delay")}),
    )

    class Media:
        js = ("alerts/preview.js", "alerts/alert_form.js")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(recipients_count=Count("recipients", distinct=True))

    @admin.display(description="channels")
    def channel_list(self, alert: Alert) -> str:
        return ", ".join(alert.channels)

    @admin.display(description="recipients", ordering="recipients_count")
    def recipient_count(self, alert: Alert) -> int:
        return alert.recipients_count

    @admin.display(description="next")
    def next_due(self, alert: Alert) -> str:
        times = alert_due_times(alert, count=1) if alert.state == "active" else []
        return f"{schedules.wall_clock(times[0], alert.timezone):%Y-%m-%d %H:%M} {alert.timezone}" if times else "—"

    @admin.display(description="jobs")
    def jobs_link(self, alert: Alert) -> str:
        return format_html("<a href='{}'>jobs</a>", _jobs_url(alert))

    @admin.display(description="next five occurrences")
    def next_occurrences(self, alert: Alert) -> str:
        times = alert_due_times(alert) if alert.pk and alert.state == "active" else []
        return format_html("<div id='occurrence-preview'>{}</div>", _due_times_html(alert, times))

    @admin.display(description="as received")
    def message_preview(self, alert: Alert) -> str:
        # Filled by alerts/preview.js from message_preview_view; without JavaScript, the saved texts' preview.
        body = message_preview_html(alert, contact=alert.recipients.first()) if alert.pk else ""
        return format_html("<div id='message-preview'>{}</div>", body)

    @admin.display(description="latest occurrences")
    def escalation_status(self, alert: Alert) -> str:
        """Where each of the latest occurrences stands in its walk: "step 2 of 3, next at 09:20 UTC"."""
        if not alert.pk:
            return "—"
        rows = []
        for occurrence in Occurrence.objects.filter(alert=alert).order_by("-scheduled_for")[:5]:
            status = occurrence_walk_status(occurrence)
            if status is not None:
                rows.append((timetag(occurrence.scheduled_for), str(status)))
        if not rows:
            return "No occurrence has walked a policy yet."
        return format_html("<ul class='escalation-status'>{}</ul>", format_html_join("", "<li>{}: {}</li>", rows))

    @admin.display(description="see also")
    def links(self, alert: Alert) -> str:
        if not alert.pk:
            return "—"
        deliveries = reverse("admin:alerts_delivery_changelist") + f"?occurrence__alert__id__exact={alert.pk}"
        return format_html("<a href='{}'>its jobs</a> · <a href='{}'>its deliveries</a>", _jobs_url(alert), deliveries)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # After the recipients are saved: the jobs' labels count them.
        services.alert_schedule_sync(alert=form.instance)

    def get_urls(self):
        preview = path("preview/", self.admin_site.admin_view(self.preview_view), name="alerts_alert_preview")
        message = path(
            "preview/message/",
            self.admin_site.admin_view(self.message_preview_view),
            name="alerts_alert_message_preview",
        )
        return [preview, message, *super().get_urls()]

    def _require_editing(self, request: HttpRequest) -> None:
        # The previews serve the add and change forms, and render what is typed for any contact named: not for
        # staff allowed only to look, whose page shows the saved alert's previews.
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied("The previews are for accounts that may add or change alerts.")

    def message_preview_view(self, request: HttpRequest) -> HttpResponse:
        """The texts being typed, rendered for the first chosen recipient: SMS length, encoding and parts."""
        self._require_editing(request)
        alert = Alert(**{name: request.GET.get(name, "") for name in MESSAGE_FIELDS})
        ids = [pk for pk in request.GET.getlist("recipients") if pk.isdigit()]
        contact = Contact.objects.filter(pk__in=ids).order_by("name", "pk").first() if ids else None
        return HttpResponse(message_preview_html(alert, contact=contact))

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """The next five occurrences of the schedule being typed, before it is saved."""
        self._require_editing(request)
        form = AlertForm(request.GET)
        errors = schedule_errors(form)
        times = []
        alert = None
        if not errors:
            alert = unsaved_alert(form)
            try:
                times = alert_due_times(alert, after=timezone.now())
            except schedules.ScheduleError as exc:
                errors = {"schedule": [str(exc)]}
        return TemplateResponse(
            request,
            "admin/alerts/alert/preview.html",
            {"errors": errors, "times_html": _due_times_html(alert, times) if alert else ""},
        )

    def _each(self, request, queryset, action, done: str) -> None:
        count = 0
        for alert in queryset:
            try:
                if action(alert=alert) is not False:
                    count += 1
            except services.AlertNotActive as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"{done}: {count} alert(s).", messages.SUCCESS)

    @admin.action(description="Send selected alerts now", permissions=["change"])
    def send_now(self, request, queryset) -> None:
        self._each(request, queryset, services.alert_send_now, "Sending now")

    @admin.action(description="Pause selected alerts", permissions=["change"])
    def pause(self, request, queryset) -> None:
        self._each(request, queryset, services.alert_pause, "Paused")

    @admin.action(description="Resume selected alerts", permissions=["change"])
    def resume(self, request, queryset) -> None:
        self._each(request, queryset, services.alert_resume, "Resumed")

    @admin.action(description="Cancel selected alerts and their pending jobs", permissions=["change"])
    def cancel(self, request, queryset) -> None:
        jobs = sum(services.alert_cancel(alert=alert) for alert in queryset)
        self.message_user(request, f"Cancelled {queryset.count()} alert(s) and {jobs} pending job(s).")

    # Duplicating creates alerts: it needs the add permission, as the admin's own "Save as new" would.
    @admin.action(description="Duplicate selected alerts (the copies start paused)", permissions=["add"])
    def duplicate(self, request, queryset) -> None:
        self._each(request, queryset, services.alert_duplicate, "Duplicated")
