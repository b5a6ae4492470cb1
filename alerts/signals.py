"""Clean-up when an alert is deleted, however it is deleted (admin, bulk, shell)."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from alerts.models import Alert
from scheduler.models import ACTIVE_STATES
from scheduler.selectors import jobs_for_target
from scheduler.services import job_cancel


@receiver(post_delete, sender=Alert)
def forget_deleted_alert(sender, instance: Alert, **kwargs) -> None:
    for job_id in jobs_for_target(instance, states=ACTIVE_STATES).values_list("pk", flat=True):
        job_cancel(job_id=job_id, reason="the alert was deleted")
