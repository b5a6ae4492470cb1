"""Reads on alerts: their jobs, contacts and deliveries (when they are due: ``alerts/schedules.py``)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet

from alerts.models import Alert, Contact, Delivery, DeliveryState
from scheduler.models import Job


def alert_jobs(alert: Alert) -> QuerySet[Job]:
    return Job.objects.filter(target_type=ContentType.objects.get_for_model(Alert), target_id=str(alert.pk))


def contact_by_phone(phone: str) -> Contact | None:
    return Contact.objects.filter(phone=phone).order_by("-is_active", "pk").first()


def latest_sms_delivery_to(contact: Contact, *, sent_before: datetime) -> Delivery | None:
    """The last SMS that reached (or may have reached) the contact before ``sent_before``."""
    return (
        Delivery.objects.filter(
            contact=contact,
            channel="sms",
            created_at__lt=sent_before,
            state__in=(DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.UNKNOWN),
        )
        .select_related("occurrence__alert")
        .order_by("-created_at", "-pk")
        .first()
    )
