from __future__ import annotations

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """The product: contacts, alerts, their schedules, delivery channels and records."""

    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts import signals, tasks  # noqa: F401  (connects receivers; registers the tasks everywhere)
