"""Quiet hours in the contact's own timezone, across DST changes; the delivery waits for their end."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError

from alerts.channel_health import delivery_hold
from alerts.models import Contact, Delivery, DeliveryState, Occurrence
from alerts.quiet_hours import quiet_until
from scheduler.models import Job
from tests.alerts.factories import AlertFactory, ContactFactory

PARIS = ZoneInfo("Europe/Paris")


def contact(start="22:00", end="07:00", days="0123456", tz="Europe/Paris") -> Contact:
    return Contact(name="Ada", timezone=ZoneInfo(tz), quiet_start=time.fromisoformat(start),
                   quiet_end=time.fromisoformat(end), quiet_days=days)  # fmt: skip


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


@pytest.mark.parametrize(
    "moment, end",
    [
        (paris(2026, 6, 10, 23, 0), paris(2026, 6, 11, 7, 0)),
        (paris(2026, 6, 11, 6, 59), paris(2026, 6, 11, 7, 0)),
        (paris(2026, 6, 10, 22, 0), paris(2026, 6, 11, 7, 0)),
        (paris(2026, 6, 11, 7, 0), None),
        (paris(2026, 6, 10, 21, 59), None),
        (paris(2026, 6, 10, 12, 0), None),
    ],
)
def test_an_overnight_window_holds_until_its_end_the_next_morning(moment, end):
    assert quiet_until(contact(), moment.astimezone(UTC)) == (end.astimezone(UTC) if end else None)


def test_the_spring_night_is_an_hour_shorter_and_still_ends_at_seven_local():
    # 29 March 2026: Paris jumps from 02:00 CET to 03:00 CEST.
    end = quiet_until(contact(), paris(2026, 3, 28, 23, 0).astimezone(UTC))
    assert end == datetime(2026, 3, 29, 5, 0, tzinfo=UTC) == paris(2026, 3, 29, 7, 0)


def test_the_autumn_night_is_an_hour_longer_and_still_ends_at_seven_local():
    # 25 October 2026: Paris falls back from 03:00 CEST to 02:00 CET; 02:30 happens twice, both quiet.
    first_pass, second_pass = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert (
        quiet_until(contact(), first_pass)
        == quiet_until(contact(), second_pass)
        == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)
    )


def test_a_start_inside_the_spring_gap_starts_at_the_end_of_the_gap():
    gap = contact(start="02:30", end="06:00")
    assert quiet_until(gap, datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) is None  # 01:59 CET
    assert quiet_until(gap, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == paris(2026, 3, 29, 6, 0)  # 03:00 CEST


@pytest.mark.parametrize("tz", ["Europe/Paris", "Australia/Lord_Howe", "America/New_York"])
def test_every_night_of_a_year_ends_at_seven_local(tz):
    zone, quiet = ZoneInfo(tz), contact(tz=tz)
    day = date(2026, 1, 1)
    while day.year == 2026:
        late = datetime.combine(day, time(23, 0), tzinfo=zone).astimezone(UTC)
        end = quiet_until(quiet, late)
        assert end is not None and end.astimezone(zone).replace(tzinfo=None) == datetime.combine(
            day + timedelta(days=1), time(7, 0)
        ), day
        assert quiet_until(quiet, end) is None and quiet_until(quiet, end - timedelta(seconds=1)) == end
        day += timedelta(days=1)


def test_only_the_chosen_weekdays_start_a_window():
    weeknights = contact(days="01234")  # Monday to Friday nights
    assert quiet_until(weeknights, paris(2026, 6, 12, 23, 0)) == paris(2026, 6, 13, 7, 0).astimezone(UTC)  # Fri
    assert quiet_until(weeknights, paris(2026, 6, 13, 23, 0)) is None  # Saturday night
    assert quiet_until(weeknights, paris(2026, 6, 15, 6, 0)) is None  # Monday morning, after Sunday night
    office = contact(start="09:00", end="17:00", days="01234")
    assert quiet_until(office, paris(2026, 6, 12, 16, 0)) == paris(2026, 6, 12, 17, 0).astimezone(UTC)
    assert quiet_until(office, paris(2026, 6, 13, 16, 0)) is None


def test_no_quiet_hours_hold_nothing():
    assert quiet_until(Contact(name="Bo", timezone=PARIS), datetime(2026, 6, 10, 22, 0, tzinfo=UTC)) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, error",
    [
        ({"quiet_start": time(22, 0)}, "Give both the start and the end"),
        ({"quiet_start": time(22, 0), "quiet_end": time(22, 0)}, "must end at another time"),
        ({"quiet_start": time(22, 0), "quiet_end": time(7, 0), "quiet_days": "0018"}, "digits 0 (Monday) to 6"),
    ],
)
def test_half_or_empty_quiet_hours_and_bad_weekdays_are_refused(fields, error):
    with pytest.raises(ValidationError, match=re.escape(error)):
        ContactFactory.build(**fields).full_clean()


@pytest.mark.django_db
def test_a_delivery_due_in_the_spring_night_waits_for_seven_local_with_a_job_of_its_own():
    ada = ContactFactory(name="Ada", timezone="Europe/Paris", quiet_start=time(22, 0), quiet_end=time(7, 0))
    alert = AlertFactory(recipients=[ada], name="Boiler")
    with time_machine.travel(paris(2026, 3, 28, 23, 0), tick=False):
        occurrence = Occurrence.objects.create(alert=alert, scheduled_for=paris(2026, 3, 28, 23, 0))
        held = delivery_hold(job=SimpleNamespace(id=None), occurrence=occurrence, contact=ada, channel="sms")
        again = delivery_hold(job=SimpleNamespace(id=None), occurrence=occurrence, contact=ada, channel="sms")

    [waiting] = Job.objects.all()
    assert waiting.eta == datetime(2026, 3, 29, 5, 0, tzinfo=UTC), "07:00 summer time, not 8 hours after 23:00"
    assert waiting.kwargs == {"contact_id": ada.pk} and "after quiet hours (until 2026-03-29 07:00" in waiting.label
    assert not held.skipped and held.reason == f"Ada until 2026-03-29 07:00 Europe/Paris (job {waiting.pk})"
    assert again == held, "a retried job finds the same waiting job"
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.PENDING and delivery.note.startswith("waits for quiet hours until")


@pytest.mark.django_db
def test_the_waiting_job_itself_delivers_and_an_urgent_alert_does_not_wait():
    ada = ContactFactory(timezone="Europe/Paris", quiet_start=time(22, 0), quiet_end=time(7, 0))
    with time_machine.travel(paris(2026, 3, 28, 23, 0), tick=False):
        occurrence = Occurrence.objects.create(
            alert=AlertFactory(recipients=[ada]), scheduled_for=paris(2026, 3, 28, 23)
        )
        first = delivery_hold(job=SimpleNamespace(id=None), occurrence=occurrence, contact=ada, channel="sms")
        waiting = Job.objects.get()
        assert first is not None
        # Run early (a clock a little behind): it is the job the wait asked for, so it delivers.
        assert delivery_hold(job=waiting, occurrence=occurrence, contact=ada, channel="sms") is None
        urgent = Occurrence.objects.create(
            alert=AlertFactory(recipients=[ada], urgent=True), scheduled_for=paris(2026, 3, 28, 23)
        )
        assert delivery_hold(job=SimpleNamespace(id=None), occurrence=urgent, contact=ada, channel="sms") is None
    assert Job.objects.count() == 1
