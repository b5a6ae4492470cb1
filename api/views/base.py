"""What every resource of the API shares: authentication, the admin's permissions, paging."""

from __future__ import annotations

from rest_framework import pagination

from api.permissions import ModelPermissions


class IdPagination(pagination.CursorPagination):
    """Newest first by id: an index walk from the cursor, the same cost at any depth, no COUNT(*)."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ModelPermissionsMixin:
    permission_classes = [ModelPermissions]
    pagination_class = IdPagination

    @property
    def permission_model(self):
        return self.queryset.model
