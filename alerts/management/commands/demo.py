"""A few contacts and alerts of each kind, one due within a minute, so `make run` shows something real."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from alerts import services
from alerts.models import Alert, Contact, EscalationPolicy, EscalationStep, ScheduleKind
from alerts.schedules import parse_relative, wall_clock

PREFIX = "Demo: "
# Late enough that the first alert's SMS reaches the sink alone; soon enough to watch the walk on /jobs.
ESCALATION_DELAY = timedelta(minutes=3)


class Command(BaseCommand):
    help = "Create demo contacts and alerts (once, relative, crontab, interval); run it again to refresh them."

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        with transaction.atomic():
            for alert in Alert.objects.filter(name__startswith=PREFIX):
                services.alert_cancel(alert=alert)
                alert.delete()
            EscalationPolicy.objects.filter(name__startswith=PREFIX).delete()
            ada, _ = Contact.objects.update_or_create(
                name="Ada (demo)",
                defaults={"phone": "+14155550100", "email": "ada@example.com", "timezone": "Europe/London"},
            )
            # Grace's quiet hours cover the next hour, wherever the demo runs: her SMS of the first alert waits
            # in a job of its own until they end (see /jobs), while Ada gets hers at once.
            grace_now = wall_clock(now, ZoneInfo("America/New_York"))
            grace, _ = Contact.objects.update_or_create(
                name="Grace (demo)",
                defaults={
                    "phone": "+14155550101", "email": "grace@example.com", "timezone": "America/New_York",
                    "quiet_start": (grace_now - timedelta(hours=1)).time().replace(second=0, microsecond=0),
                    "quiet_end": (grace_now + timedelta(hours=1)).time().replace(second=0, microsecond=0),
                    "quiet_days": "0123456",
                },
            )  # fmt: skip
            relative_spec = "+1 day at 09:00"
            specs = [
                dict(
                    name="Server room too hot",
                    schedule_kind=ScheduleKind.ONCE,
                    send_at=now + timedelta(seconds=15),
                    send_email=True,
                    message="Hi {{ contact.name }}, the server room is above 30°C.",
                ),
                dict(
                    name="Renew the certificate",
                    schedule_kind=ScheduleKind.RELATIVE,
                    relative_spec=relative_spec,
                    relative_base=now,
                    send_at=parse_relative(relative_spec).resolve(now, Alert().timezone),
                    message="{{ contact.name }}: the TLS certificate expires soon.",
                ),
                dict(
                    name="Weekday stand-up",
                    schedule_kind=ScheduleKind.CRONTAB,
                    crontab="0 9 * * mon-fri",
                    timezone="Europe/Paris",
                    message="Stand-up in 10 minutes, {{ contact.name }}.",
                ),
                dict(
                    name="Check the backups",
                    schedule_kind=ScheduleKind.INTERVAL,
                    interval_every=6,
                    interval_unit="hours",
                    starts_at=now + timedelta(minutes=2),
                    message="{{ contact.name }}, please check last night's backups.",
                ),
            ]
            for spec in specs:
                alert = Alert.objects.create(**{**spec, "name": PREFIX + spec["name"]})
                alert.recipients.set([ada, grace])
                services.alert_schedule_sync(alert=alert)
            escalating = _escalating_alert(ada, grace, now=now)
        sms = (
            "SMS go to Twilio" if settings.TWILIO_ACCOUNT_SID else "SMS go to the local sink (Twilio is not configured)"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {len(specs) + 1} demo alerts; the first is due in 15 seconds (Grace's SMS waits for her "
                f"quiet hours to end, in an hour). “{escalating}” escalates from {ESCALATION_DELAY.seconds // 60} "
                f"minutes on: Ada, then Grace 2 minutes later, twice over, until someone acknowledges it. {sms}; "
                "see /jobs."
            )
        )


def _escalating_alert(ada: Contact, grace: Contact, *, now) -> Alert:
    """A one-off walking a policy: Ada by SMS, 2 minutes later Grace by SMS and email (quiet hours or not:
    the alert is urgent), then the same again once; each step is a job on /jobs, and acknowledging (the link
    in the SMS) makes the remaining ones abort."""
    policy = EscalationPolicy.objects.create(name=PREFIX + "on-call", repeat=1)
    first = EscalationStep.objects.create(policy=policy, position=1, wait_minutes=2)
    first.contacts.set([ada])
    second = EscalationStep.objects.create(policy=policy, position=2, send_email=True, wait_minutes=2)
    second.contacts.set([grace])
    alert = Alert.objects.create(
        name=PREFIX + "Database replica lagging",
        schedule_kind=ScheduleKind.ONCE,
        send_at=now + ESCALATION_DELAY,
        urgent=True,
        escalation_policy=policy,
        message="{{ contact.name }}, the database replica is 10 minutes behind.",
    )
    alert.recipients.set([ada])
    services.alert_schedule_sync(alert=alert)
    return alert
