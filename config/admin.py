from __future__ import annotations

from django.contrib import admin

from config.models import LoginFailure


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    """Failed logins within the throttle's window; deleting an account's rows lifts its throttle at once."""

    list_display = ("at", "username", "address")
    search_fields = ("username", "address")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
