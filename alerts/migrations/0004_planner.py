"""The planner replaces one celery beat entry per recurring alert (see alerts/planner.py)."""

from django.db import migrations, models
from django.utils import timezone


def plan_from_now(apps, schema_editor):
    """Give every active alert the due time the planner starts from, and drop the alerts' beat entries.

    Recurring alerts go on from now. A one-off is due at its time unless an occurrence exists for it.
    """
    from alerts.planner import due_after

    Alert = apps.get_model("alerts", "Alert")
    Occurrence = apps.get_model("alerts", "Occurrence")
    now = timezone.now()
    for alert in Alert.objects.filter(state="active"):
        if alert.schedule_kind in ("crontab", "interval"):
            last = Occurrence.objects.filter(alert=alert).order_by("-scheduled_for").first()
            alert.next_due_at = due_after(alert, max(now, last.scheduled_for) if last else now)
        elif alert.send_at and not Occurrence.objects.filter(alert=alert, scheduled_for=alert.send_at).exists():
            alert.next_due_at = alert.send_at
        alert.save(update_fields=["next_due_at"])
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="alerts.recurring_tick").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0003_inbound_message"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RemoveField(model_name="alert", name="periodic_task"),
        migrations.AddField(
            model_name="alert",
            name="next_due_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="alert",
            index=models.Index(
                condition=models.Q(("next_due_at__isnull", False), ("state", "active")),
                fields=["next_due_at"],
                name="alert_plan_due",
            ),
        ),
        migrations.RunPython(plan_from_now, migrations.RunPython.noop),
    ]
