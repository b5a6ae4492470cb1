"""The admin's model permissions: view to read, add / change / delete to write."""

from __future__ import annotations

from rest_framework import permissions

# Which model permission each viewset action needs; actions of our own say theirs in `action_permissions`.
_STANDARD = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


class ModelPermissions(permissions.BasePermission):
    """Like DRF's ``DjangoModelPermissions``, but reading needs the view permission too."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        model = view.permission_model
        verb = {**_STANDARD, **getattr(view, "action_permissions", {})}.get(view.action)
        if verb is None:
            # HEAD and OPTIONS, or an action nobody mapped: read access at most.
            verb = "view"
            if request.method not in permissions.SAFE_METHODS:
                return False
        return user.has_perm(f"{model._meta.app_label}.{verb}_{model._meta.model_name}")
