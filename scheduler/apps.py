from __future__ import annotations

from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    """The generic job engine. It knows nothing about alerts."""

    name = "scheduler"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from scheduler import signals  # noqa: F401  (connects the worker hooks)
