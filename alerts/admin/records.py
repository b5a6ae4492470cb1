"""The read-only admin of what delivery left behind: deliveries, the SMS sink, inbound messages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from alerts.models import (
    Delivery,
    InboundMessage,
    SmsSinkMessage,
)
from scheduler.admin import utc_time
from scheduler.templatetags.scheduler_tags import timetag


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "occurrence_time",
        "contact",
        "channel",
        "escalation",
        "state",
        "provider_id",
        "attempts",
        utc_time("modified_at", "modified"),
        "job_link",
    )
    list_filter = ("state", "channel")
    search_fields = ("provider_id", "contact__name", "occurrence__alert__name", "address")
    list_select_related = ("occurrence__alert", "contact")

    @admin.display(description="occurrence", ordering="occurrence__scheduled_for")
    def occurrence_time(self, delivery: Delivery) -> str:
        return format_html("{} at {}", delivery.occurrence.alert, timetag(delivery.occurrence.scheduled_for))

    @admin.display(description="escalation", ordering="escalation_step")
    def escalation(self, delivery: Delivery) -> str:
        if not delivery.escalation_step:
            return "—"
        return f"round {delivery.escalation_round}, step {delivery.escalation_step}"

    @admin.display(description="job")
    def job_link(self, delivery: Delivery) -> str:
        if not delivery.job_id:
            return "—"
        return format_html(
            "<a href='{}'>job {}</a>", reverse("scheduler:job_detail", args=[delivery.job_id]), delivery.job_id
        )


@admin.register(SmsSinkMessage)
class SmsSinkMessageAdmin(ReadOnlyAdmin):
    list_display = (utc_time("created_at", "received"), "to", "sender", "body")
    search_fields = ("to", "body")


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    """SMS received on the Twilio number, each once by its SID, and what an "ACK" acknowledged."""

    list_display = (utc_time("received_at", "received"), "sender", "body", "acknowledged")
    search_fields = ("sid", "sender", "body")
    list_select_related = ("acknowledged",)
