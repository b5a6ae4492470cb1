from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from scheduler import services
from scheduler.models import Job, JobEvent


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    fields = ("at", "kind", "hostname", "message")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "task_name",
        "label",
        "state",
        "eta",
        "attempts",
        "max_attempts",
        "modified_at",
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

    @admin.action(description="Run selected jobs now (waiting jobs) or retry them (failed jobs)")
    def run_now(self, request, queryset) -> None:
        started = sum(services.job_run_now(job_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{started} job(s) will run now.", messages.SUCCESS)

    @admin.action(description="Cancel selected jobs")
    def cancel(self, request, queryset) -> None:
        cancelled = sum(
            services.job_cancel(job_id=pk, reason=f"cancelled by {request.user}")
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{cancelled} job(s) cancelled.", messages.SUCCESS)
