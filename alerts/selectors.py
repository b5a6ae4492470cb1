"""Reads on alerts: contacts and deliveries (due times: ``alerts/schedules.py``; jobs: ``scheduler.selectors``)."""

from __future__ import annotations

from datetime import datetime

from alerts.models import Contact, Delivery, DeliveryState


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
