"""Contacts, alerts with their schedule, occurrences and delivery records."""

from alerts.models.alerts import Alert, AlertState, Channel, EscalationPolicy, EscalationStep, IntervalUnit, Occurrence
from alerts.models.contacts import Contact, new_webhook_secret
from alerts.models.deliveries import Delivery, DeliveryState, InboundMessage, SendSlot, SmsSinkMessage
from alerts.schedules import ScheduleKind

__all__ = [
    "Alert",
    "AlertState",
    "Channel",
    "Contact",
    "Delivery",
    "DeliveryState",
    "EscalationPolicy",
    "EscalationStep",
    "InboundMessage",
    "IntervalUnit",
    "Occurrence",
    "ScheduleKind",
    "SendSlot",
    "SmsSinkMessage",
    "new_webhook_secret",
]
