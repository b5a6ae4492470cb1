from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts.models import Alert, Contact, ScheduleKind
from alerts.quiet_hours import quiet_until
from scheduler.models import Job


@pytest.mark.django_db
def test_demo_creates_an_alert_of_each_kind_one_due_within_a_minute(settings):
    settings.TWILIO_ACCOUNT_SID = ""
    out = StringIO()
    call_command("demo", stdout=out)
    call_command("demo", stdout=out)  # running it again replaces the demo alerts
    assert sorted(Alert.objects.values_list("schedule_kind", flat=True)) == sorted(ScheduleKind.values)
    waiting = Job.objects.filter(state__in=["scheduled", "queued"])
    assert waiting.count() == 4, "once (SMS and email), relative, and the interval's first, due within the look-ahead"
    assert waiting.filter(eta__lte=timezone.now() + timedelta(minutes=1)).count() == 2
    assert Job.objects.filter(state="cancelled").count() == 4, "the first run's jobs"
    crontab = Alert.objects.get(schedule_kind=ScheduleKind.CRONTAB)
    assert crontab.next_due_at > timezone.now() + settings.ALERT_PLAN_AHEAD, "the planner will plan it in time"
    assert "local sink" in out.getvalue()
    grace = Contact.objects.get(name="Grace (demo)")
    assert quiet_until(grace, timezone.now()) is not None, "the demo shows a delivery waiting for quiet hours"
