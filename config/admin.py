from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from config.models import LoginFailure


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    """Failed logins within the throttle's window; deleting an account's rows lifts its throttle at once."""

    list_display = ("time", "username", "address")
    search_fields = ("username", "address")

    @admin.display(description="at", ordering="at")
    def time(self, failure: LoginFailure) -> str:
        # Labelled UTC; the admin's script (times.js) shows it in the viewer's zone, as every time there.
        at = failure.at
        return format_html('<time datetime="{}">{} UTC</time>', at.isoformat(), f"{at:%Y-%m-%d %H:%M:%S}")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
