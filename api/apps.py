from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The operators' interfaces for machines: the REST API at /api/v1/ and the Prometheus metrics."""

    name = "api"
    verbose_name = "API"
