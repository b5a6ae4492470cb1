"""Clean-up when an alert is deleted, however it is deleted (admin, bulk, shell)."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from alerts.models import Alert, Delivery, DeliveryState
from scheduler.services import jobs_cancel_all, resend_requested


@receiver(post_delete, sender=Alert)
def forget_deleted_alert(sender, instance: Alert, **kwargs) -> None:
    jobs_cancel_all(target=instance, reason="the alert was deleted")


@receiver(resend_requested)
def resend_unknown_deliveries(sender, job_id: int, **kwargs) -> None:
    """An operator read the job that needs attention and asked to resend: its deliveries of unknown
    outcome (a worker died between claiming and recording, on a channel that cannot be asked) go out again."""
    Delivery.objects.filter(job_id=job_id, state=DeliveryState.UNKNOWN).update(
        state=DeliveryState.PENDING, note="resend requested by an operator", modified_at=timezone.now()
    )
