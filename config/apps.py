from __future__ import annotations

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """Project-wide pieces: system checks, the health check and the ``runstack`` command."""

    name = "config"
    label = "project"
    verbose_name = "Project"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the checks)
