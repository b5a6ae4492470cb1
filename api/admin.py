from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from api.models import ApiToken
from api.tokens import api_token_create, api_token_revoke
from scheduler.admin import CheckedActionsAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(CheckedActionsAdmin):
    """Adding a token shows it once, in the confirmation message; only its hash is kept."""

    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # A token is created or revoked, never edited: its owner cannot change under a running program.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        row, token = api_token_create(user=obj.user, name=obj.name)
        obj.pk = row.pk
        obj.prefix, obj.digest, obj.created_at = row.prefix, row.digest, row.created_at
        self.message_user(
            request,
            f"The token for {row.user}: {token} — copy it now, it is not shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:
        count = sum(api_token_revoke(token_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
