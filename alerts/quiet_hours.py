"""Quiet hours: a contact's nightly (or daily) window, in its own timezone, when non-urgent alerts wait.

A window starts on each chosen weekday at ``quiet_start`` and ends at ``quiet_end`` the same day, or the
next day when the end is not after the start (22:00-07:00). Both are wall-clock times in the contact's
zone, read with the schedules' DST policy: a time inside the spring gap is the end of the gap, a time in
the repeated autumn hour its first pass. So 22:00-07:00 ends at 07:00 local on both DST nights, one hour
shorter or longer in elapsed time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.models import Contact
from alerts.schedules import resolve_local, wall_clock

ONE_DAY = timedelta(days=1)


def _window_end(contact: Contact, moment: datetime) -> datetime | None:
    tz = contact.timezone
    today = wall_clock(moment, tz).date()
    for day in (today - ONE_DAY, today):
        if str(day.weekday()) not in contact.quiet_days:
            continue
        start = resolve_local(datetime.combine(day, contact.quiet_start), tz)
        end_day = day if contact.quiet_end > contact.quiet_start else day + ONE_DAY
        end = resolve_local(datetime.combine(end_day, contact.quiet_end), tz)
        if start <= moment < end:
            return end
    return None


def quiet_until(contact: Contact, moment: datetime) -> datetime | None:
    """When the contact's quiet hours around ``moment`` end (UTC), or ``None`` if ``moment`` is not in them."""
    if contact.quiet_start is None or contact.quiet_end is None or not contact.quiet_days:
        return None
    end = _window_end(contact, moment)
    # A window may end where the next begins (07:00-22:00 and 22:00-07:00 on other days): wait for both.
    for _ in range(8):
        later = _window_end(contact, end) if end is not None else None
        if later is None:
            break
        end = later
    return end


def describe(contact: Contact, end: datetime) -> str:
    """The end of a contact's quiet hours as its own wall clock shows it, with the zone."""
    return f"{wall_clock(end, contact.timezone):%Y-%m-%d %H:%M} {contact.timezone}"
