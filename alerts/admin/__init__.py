"""The admin: each module registers its models on import."""

from alerts.admin import alerts, contacts, records

__all__ = ["alerts", "contacts", "records"]
