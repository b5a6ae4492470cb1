from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.urls import reverse
from django.utils.html import format_html
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import PeriodicTask

from scheduler import services
from scheduler.models import Job, JobEvent
from scheduler.templatetags.scheduler_tags import localtimes, timetag


def utc_time(name: str, description: str = ""):
    """An admin column showing a model's datetime ``name`` as the job pages do: labelled UTC, which the
    pages' script (times.js) shows in the viewer's zone, labelled with it. The admin alone would show it
    unlabelled, in the server's UTC."""

    @admin.display(description=description or name.replace("_", " "), ordering=name)
    def show(obj) -> str:
        return timetag(getattr(obj, name))

    show.__name__ = name
    return show


class CheckedActionsAdmin(admin.ModelAdmin):
    """Every action declares ``permissions=[...]``; posting one the user may not run is a 403.

    Django alone leaves such an action out of the menu and ignores a forged POST of it, answering 200 with
    the list: a clear refusal is better, for the user and for the logs.
    """

    def changelist_view(self, request, extra_context=None):
        action = request.POST.get("action") if request.method == "POST" else None
        if action and action not in self.get_actions(request):
            raise PermissionDenied(f"You may not run “{action}” on {self.model._meta.verbose_name_plural}.")
        return super().changelist_view(request, extra_context)


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    fields = (utc_time("at"), "kind", "hostname", "event_message")
    readonly_fields = fields

    @admin.display(description="message")
    def event_message(self, event: JobEvent) -> str:
        return localtimes(event.message)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(CheckedActionsAdmin):
    list_display = (
        "id",
        "task_name",
        "label",
        "state",
        utc_time("eta", "ETA"),
        "attempts",
        "max_attempts",
        utc_time("modified_at", "modified"),
        "status_message",
        "page",
    )
    list_filter = ("state", "queue", "task_name")
    search_fields = ("task_name", "label", "celery_task_id", "unique_key")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [JobEventInline]
    actions = ["run_now", "cancel"]

    def has_add_permission(self, request) -> bool:
        return False

    # The job's own page (live, with its timeline and actions) is linked from the list and the change form.
    def view_on_site(self, obj: Job) -> str:
        return reverse("scheduler:job_detail", args=[obj.pk])

    @admin.display(description="Page")
    def page(self, obj: Job) -> str:
        return format_html('<a href="{}">open</a>', reverse("scheduler:job_detail", args=[obj.pk]))

    def has_change_permission(self, request, obj=None) -> bool:
        # Jobs change only through the engine's lifecycle, never by editing fields.
        return False

    def get_fields(self, request, obj=None):
        # Every field is read-only (see above); its times are shown labelled, like the list's.
        return [
            utc_time(name) if isinstance(Job._meta.get_field(name), models.DateTimeField) else name
            for name in super().get_fields(request, obj)
        ]

    def has_operate_permission(self, request) -> bool:
        """Run now and cancel: the model's change permission, which the admin's own editing never uses."""
        return request.user.has_perm("scheduler.change_job")

    @admin.action(permissions=["operate"], description="Run selected jobs now (waiting) or retry them (failed)")
    def run_now(self, request, queryset) -> None:
        started = sum(services.job_run_now(job_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{started} job(s) will run now.", messages.SUCCESS)

    @admin.action(description="Cancel selected jobs", permissions=["operate"])
    def cancel(self, request, queryset) -> None:
        cancelled = sum(
            services.job_cancel(job_id=pk, reason=f"cancelled by {request.user}")
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{cancelled} job(s) cancelled.", messages.SUCCESS)


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(CheckedActionsAdmin, beat_admin.PeriodicTaskAdmin):
    """django-celery-beat's admin, whose actions (enable, disable, toggle, run) declare no permission: a
    staff user allowed only to look could run them. Here they need the change permission."""

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request, queryset) -> None:
        super().enable_tasks(request, queryset)

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request, queryset) -> None:
        super().disable_tasks(request, queryset)

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request, queryset) -> None:
        super().toggle_tasks(request, queryset)

    @admin.action(description="Run selected tasks", permissions=["change"])
    def run_tasks(self, request, queryset) -> None:
        super().run_tasks(request, queryset)
