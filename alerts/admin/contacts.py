"""The admin of contacts and escalation policies."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html

from alerts import channel_health
from alerts.forms import EscalationStepForm, EscalationStepFormSet
from alerts.models import (
    Contact,
    EscalationPolicy,
    EscalationStep,
)
from scheduler.admin import CheckedActionsAdmin
from scheduler.templatetags.scheduler_tags import timetag


class TimezoneInUseFilter(admin.SimpleListFilter):
    """The zones contacts are in, not the 600 IANA names the field accepts."""

    title = "timezone"
    parameter_name = "timezone"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        zones = Contact.objects.order_by("timezone").values_list("timezone", flat=True).distinct()
        return [(str(zone), str(zone)) for zone in zones]

    def queryset(self, request, queryset):
        return queryset.filter(timezone=self.value()) if self.value() else queryset


class SmsOptOutFilter(admin.SimpleListFilter):
    title = "SMS opt-out"
    parameter_name = "sms_opted_out"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return [("yes", "Opted out"), ("no", "Gets SMS")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(sms_opted_out_at__isnull=self.value() == "no")
        return queryset


@admin.register(Contact)
class ContactAdmin(CheckedActionsAdmin):
    list_display = ("name", "phone", "email", "webhook", "timezone", "is_active", "sms_opt_out", "quiet_hours")
    list_filter = ("is_active", SmsOptOutFilter, TimezoneInUseFilter)
    search_fields = ("name", "phone", "email", "webhook_url")
    # Set only by the phone itself (STOP, or Twilio's 21610): an admin may clear it, not invent it. The
    # webhook secret is generated, and replaced only by the rotate action.
    readonly_fields = ("sms_opted_out_at", "sms_opt_out_source", "webhook_secret")
    actions = ["clear_sms_opt_out", "rotate_webhook_secret"]

    @admin.display(description="webhook", ordering="webhook_url")
    def webhook(self, contact: Contact) -> str:
        # The host only: the path of a chat's incoming webhook is its credential.
        return urlsplit(contact.webhook_url).hostname or "—"

    @admin.display(description="SMS opt-out", ordering="sms_opted_out_at")
    def sms_opt_out(self, contact: Contact) -> str:
        if contact.sms_opted_out_at is None:
            return "—"
        when = timetag(contact.sms_opted_out_at)
        return format_html("opted out {} <small>{}</small>", when, contact.sms_opt_out_source)

    @admin.display(description="quiet hours")
    def quiet_hours(self, contact: Contact) -> str:
        if contact.quiet_start is None or contact.quiet_end is None:
            return "—"
        days = "".join("MTWTFSS"[int(d)] if str(d) in contact.quiet_days else "·" for d in range(7))
        return f"{contact.quiet_start:%H:%M}-{contact.quiet_end:%H:%M} {days}"

    @admin.action(description="Clear the SMS opt-out of selected contacts", permissions=["change"])
    def clear_sms_opt_out(self, request, queryset) -> None:
        count = channel_health.contacts_sms_opt_out_clear(contacts=queryset)
        self.message_user(
            request,
            f"Cleared the SMS opt-out of {count} contact(s). Twilio keeps refusing a number that replied STOP "
            "until it replies START; if it refuses again (error 21610), the contact is opted out again.",
            messages.SUCCESS,
        )

    @admin.action(description="Rotate the webhook signing secret of selected contacts", permissions=["change"])
    def rotate_webhook_secret(self, request, queryset) -> None:
        count = channel_health.contacts_webhook_secret_rotate(contacts=queryset)
        self.message_user(
            request,
            f"Gave {count} contact(s) a new webhook signing secret. Their receivers refuse the next webhooks "
            "until they are given the new one (shown on each contact's page).",
            messages.SUCCESS,
        )


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    form = EscalationStepForm
    formset = EscalationStepFormSet
    extra = 0
    min_num = 1
    ordering = ("position",)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    """Policies are shared: an edit reaches every alert using it (who a step notifies is read when it runs;
    when it runs was fixed when each occurrence was planned)."""

    list_display = ("name", "step_list", "repeat", "alert_count")
    search_fields = ("name",)
    inlines = [EscalationStepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(alerts_count=Count("alerts", distinct=True))

    @admin.display(description="steps")
    def step_list(self, policy: EscalationPolicy) -> str:
        return " → ".join(
            f"{'+'.join(step.channels)}, wait {step.wait_minutes} min" for step in policy.steps.order_by("position")
        )

    @admin.display(description="alerts", ordering="alerts_count")
    def alert_count(self, policy: EscalationPolicy) -> int:
        return policy.alerts_count
