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
    kinds = Alert.objects.filter(escalation_policy__isnull=True).values_list("schedule_kind", flat=True)
    assert sorted(kinds) == sorted(ScheduleKind.values)
    waiting = Job.objects.filter(state__in=["scheduled", "queued"])
    steps = waiting.filter(unique_key__contains=":round:")
    assert waiting.exclude(pk__in=steps).count() == 4, (
        "once (SMS and email), relative, and the interval's first, due within the look-ahead"
    )
    assert steps.count() == 6, "the escalating alert: 2 rounds of step 1 (SMS) and step 2 (SMS and email)"
    assert waiting.filter(eta__lte=timezone.now() + timedelta(minutes=1)).count() == 2, "the escalation starts later"
    assert Job.objects.filter(state="cancelled").count() == 10, "the first run's jobs"
    escalating = Alert.objects.get(escalation_policy__isnull=False)
    assert escalating.escalation_policy.steps.count() == 2 and escalating.escalation_policy.repeat == 1
    assert "escalates" in out.getvalue()
    crontab = Alert.objects.get(schedule_kind=ScheduleKind.CRONTAB)
    assert crontab.next_due_at > timezone.now() + settings.ALERT_PLAN_AHEAD, "the planner will plan it in time"
    assert "local sink" in out.getvalue()
    grace = Contact.objects.get(name="Grace (demo)")
    assert quiet_until(grace, timezone.now()) is not None, "the demo shows a delivery waiting for quiet hours"
