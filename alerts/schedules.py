"""When alerts are due: relative specs, crontabs and intervals, read in the alert's timezone.

Pure computation: everything here is computed from datetimes and an alert's schedule fields, nothing is
read from or written to the database, so it works on unsaved alerts too (the admin's preview). The
models import this module, never the other way round.

Daylight saving time, one policy for every kind of schedule:
- a local time that does not exist (clocks jump from 02:00 to 03:00, and 02:30 is asked for) fires at
  the first minute after the gap (03:00);
- a local time that occurs twice (clocks fall back from 03:00 to 02:00, and 02:30 is asked for) fires
  once, at its first occurrence (the earlier instant, still on summer time).
Intervals are elapsed time and ignore the wall clock; crontabs and calendar units of relative specs
keep the wall-clock time across a change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from celery.schedules import ParseException, crontab_parser
from dateutil.relativedelta import relativedelta
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from alerts.models import Alert

SEARCH_DAYS = 5 * 366  # far enough for 29 February on a Monday


class ScheduleError(ValueError):
    """A schedule that cannot be read; the message says what was expected."""


class ScheduleKind(models.TextChoices):
    ONCE = "once", "Once, at a date and time"
    RELATIVE = "relative", "At a relative time"
    CRONTAB = "crontab", "Recurring: crontab"
    INTERVAL = "interval", "Recurring: every interval"


def _exists(local: datetime, tz: ZoneInfo) -> bool:
    aware = local.replace(tzinfo=tz, fold=0)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def resolve_local(local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of the naive wall-clock time ``local`` in ``tz``, by the DST policy above."""
    if local.tzinfo is not None:
        raise ValueError("resolve_local takes a naive wall-clock time")
    if _exists(local, tz):
        return local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    probe = local.replace(second=0, microsecond=0)
    for _ in range(48 * 60):
        probe += timedelta(minutes=1)
        if _exists(probe, tz):
            return probe.replace(tzinfo=tz).astimezone(UTC)
    raise ValueError(f"{local} in {tz} is in a gap longer than two days")


def wall_clock(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


# --- Relative specs ----------------------------------------------------------------------------------

RELATIVE_GRAMMAR = (
    "one or more terms like +1 month, -1 week, +2 days, +48 hours or +90 minutes "
    "(units: minutes, hours, days, weeks, months, years), optionally followed by “at HH:MM”"
)
_UNITS = {
    "minute": "minutes", "minutes": "minutes", "min": "minutes", "mins": "minutes",
    "hour": "hours", "hours": "hours", "h": "hours",
    "day": "days", "days": "days", "d": "days",
    "week": "weeks", "weeks": "weeks", "w": "weeks",
    "month": "months", "months": "months",
    "year": "years", "years": "years", "y": "years",
}  # fmt: skip
_TERM = re.compile(r"([+-])\s*(\d+)\s*([a-z]+)")
_AT = re.compile(r"\bat\s+(\d{1,2}):(\d{2})\s*$")
_ELAPSED = ("minutes", "hours")
OUTSIDE_THE_CALENDAR = "That lands outside the calendar (years 1 to 9999); use smaller amounts."


@dataclass(frozen=True)
class RelativeSpec:
    calendar: relativedelta  # days, weeks, months, years: wall-clock arithmetic
    elapsed: timedelta  # hours, minutes: elapsed time
    at: time | None

    def resolve(self, base: datetime, tz: ZoneInfo) -> datetime:
        """Calendar units (and ``at``) on the wall clock with the DST policy, then elapsed units on the instant.

        Raises ``ScheduleError`` when the result falls outside the years ``datetime`` can hold.
        """
        try:
            if not self.calendar and self.at is None:
                # Hours and minutes alone count from the instant itself: its wall-clock reading may occur twice
                # (the repeated autumn hour), and reading it back would pick the first pass, an hour early.
                return base.astimezone(UTC) + self.elapsed
            local = wall_clock(base, tz) + self.calendar
            if self.at is not None:
                local = datetime.combine(local.date(), self.at)
            return resolve_local(local, tz) + self.elapsed
        except (OverflowError, ValueError):
            # Adding a timedelta past year 9999 overflows; relativedelta's years and months give a ValueError
            # ("year 11026 is out of range"). Either way the spec asked for a time no calendar here can hold.
            raise ScheduleError(OUTSIDE_THE_CALENDAR) from None


def parse_relative(spec: str) -> RelativeSpec:
    text = spec.strip().lower()
    if not text:
        raise ScheduleError(f"The relative time is empty; expected {RELATIVE_GRAMMAR}.")
    at = None
    at_match = _AT.search(text)
    if at_match:
        hour, minute = int(at_match.group(1)), int(at_match.group(2))
        if hour > 23 or minute > 59:
            raise ScheduleError(f"“at {hour}:{minute:02d}” is not a time of day; use 00:00 to 23:59.")
        at = time(hour, minute)
        text = text[: at_match.start()].strip()
    amounts: dict[str, int] = {}
    position = 0
    for match in _TERM.finditer(text):
        if text[position : match.start()].strip():
            break
        sign, number, unit_word = match.groups()
        unit = _UNITS.get(unit_word)
        if unit is None:
            raise ScheduleError(f"“{unit_word}” is not a unit; expected {RELATIVE_GRAMMAR}.")
        amounts[unit] = amounts.get(unit, 0) + int(number) * (1 if sign == "+" else -1)
        position = match.end()
    if text[position:].strip() or not amounts:
        rest = text[position:].strip() or spec.strip()
        raise ScheduleError(f"Could not read “{rest}”; expected {RELATIVE_GRAMMAR}.")
    if at is not None and any(unit in amounts for unit in _ELAPSED):
        raise ScheduleError("“at HH:MM” goes with days, weeks, months or years, not with hours or minutes.")
    calendar = relativedelta(**{unit: n for unit, n in amounts.items() if unit not in _ELAPSED})
    try:
        elapsed = timedelta(**{unit: n for unit, n in amounts.items() if unit in _ELAPSED})
    except OverflowError:
        # More minutes or hours than a timedelta holds (999,999,999 days): far beyond any datetime anyway.
        raise ScheduleError(OUTSIDE_THE_CALENDAR) from None
    return RelativeSpec(calendar=calendar, elapsed=elapsed, at=at)


# --- Crontab -----------------------------------------------------------------------------------------

_FIELDS = (
    # name, lowest, highest (inclusive), names allowed
    ("minute", 0, 59, False),
    ("hour", 0, 23, False),
    ("day of month", 1, 31, False),
    ("month", 1, 12, True),
    ("day of week", 0, 6, True),
)
CRONTAB_HELP = "five fields: minute hour day-of-month month day-of-week, e.g. “0 9 * * mon-fri”"


@dataclass(frozen=True)
class Crontab:
    """Celery's crontab semantics: day of month AND day of week must both match; Sunday is 0."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    fields: tuple[str, str, str, str, str]

    def matches(self, day: date) -> bool:
        return (
            day.month in self.months and day.day in self.days_of_month and (day.weekday() + 1) % 7 in self.days_of_week
        )

    def occurrences(self, after: datetime, tz: ZoneInfo, count: int) -> list[datetime]:
        """The first ``count`` UTC instants strictly after ``after``."""
        found: set[datetime] = set()
        start = wall_clock(after, tz).date()
        times = sorted(time(h, m) for h in self.hours for m in self.minutes)
        for offset in range(SEARCH_DAYS):
            day = start + timedelta(days=offset)
            if not self.matches(day):
                continue
            for at in times:
                instant = resolve_local(datetime.combine(day, at), tz)
                if instant > after:
                    found.add(instant)
            # A gap can move a time past the next day's first ones: finish the day before stopping.
            if len(found) >= count:
                break
        return sorted(found)[:count]


def parse_crontab(text: str) -> Crontab:
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(f"Expected {CRONTAB_HELP}; got {len(parts)} field(s).")
    sets = []
    for (name, lowest, highest, names_allowed), part in zip(_FIELDS, parts, strict=True):
        if not names_allowed and re.search(r"[a-z]", part, re.IGNORECASE):
            raise ScheduleError(f"The {name} field “{part}” must be numbers from {lowest} to {highest}.")
        try:
            values = crontab_parser(highest - lowest + 1, lowest).parse(part)
        except (ValueError, ParseException) as exc:  # ParseException ("empty part") is not a ValueError
            raise ScheduleError(
                f"The {name} field “{part}” is not valid ({exc}); use {lowest}-{highest}, *, a-b, */n or a,b."
            ) from None
        if not values or min(values) < lowest or max(values) > highest:
            raise ScheduleError(f"The {name} field “{part}” must stay within {lowest}-{highest}.")
        sets.append(frozenset(values))
    return Crontab(*sets, fields=tuple(parts))


# --- Intervals ---------------------------------------------------------------------------------------


def interval_occurrences(start: datetime, step: timedelta, after: datetime, count: int) -> list[datetime]:
    """``start``, ``start + step``, ... : the first ``count`` strictly after ``after``."""
    if step <= timedelta(0):
        raise ScheduleError("The interval must be positive.")
    skipped = 0 if after < start else (after - start) // step + 1
    first = start + skipped * step
    return [first + n * step for n in range(count)]


# --- An alert's schedule -----------------------------------------------------------------------------

INTERVAL_UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}


# Longer is a typo (days for minutes), and far longer overflows a timedelta (2,147,483,647 days).
LONGEST_INTERVAL = timedelta(days=3660)


def alert_interval(alert: Alert) -> timedelta:
    return (alert.interval_every or 0) * INTERVAL_UNITS[alert.interval_unit]


def check_interval(alert: Alert) -> None:
    """Raise ``ScheduleError`` for an interval longer than ``LONGEST_INTERVAL`` (about ten years)."""
    unit = INTERVAL_UNITS.get(alert.interval_unit)
    if unit is not None and (alert.interval_every or 0) > LONGEST_INTERVAL / unit:
        most = LONGEST_INTERVAL // unit
        raise ScheduleError(f"At most {most:,} {alert.interval_unit} between occurrences (about ten years).")


def resolve_relative(alert: Alert, *, now: datetime | None = None) -> datetime:
    """Fix a relative alert's base (empty: ``now``) and set its ``send_at`` from its spec; return it.

    Called wherever an alert is validated (the model's ``clean``, hence the admin form), so an alert saved
    outside the admin gets its time too. Raises ``ScheduleError`` for a spec that cannot be read or that lands
    outside the calendar; whether a time in the past is acceptable is the caller's decision.
    """
    spec = parse_relative(alert.relative_spec or "")
    if alert.relative_base is None:
        alert.relative_base = now or timezone.now()
    alert.send_at = spec.resolve(alert.relative_base, alert.timezone)
    return alert.send_at


def resolve_times(alert: Alert, *, now: datetime | None = None) -> None:
    """Fix what counts from the moment of saving: a relative alert's base and time, an interval's start.

    Raises ``ScheduleError`` for a relative spec that cannot be read or that lands outside the calendar, and
    for an interval longer than ``LONGEST_INTERVAL``.
    """
    now = now or timezone.now()
    if alert.schedule_kind == ScheduleKind.RELATIVE:
        resolve_relative(alert, now=now)
    elif alert.schedule_kind == ScheduleKind.INTERVAL:
        check_interval(alert)
        if alert.starts_at is None:
            alert.starts_at = now


def alert_due_times(alert: Alert, *, after: datetime | None = None, count: int = 5) -> list[datetime]:
    """The next ``count`` times (UTC) the alert is due after ``after``, by its schedule, before expiry.

    Works on unsaved alerts too (the admin's preview). Raises ``ScheduleError`` for a schedule that
    cannot be read.
    """
    after = after or timezone.now()
    kind = alert.schedule_kind
    if kind in (ScheduleKind.ONCE, ScheduleKind.RELATIVE):
        times = [alert.send_at] if alert.send_at and alert.send_at > after else []
    elif kind == ScheduleKind.CRONTAB:
        times = parse_crontab(alert.crontab).occurrences(after, alert.timezone, count)
    elif kind == ScheduleKind.INTERVAL:
        start = alert.starts_at or after
        times = interval_occurrences(start, alert_interval(alert), after, count)
    else:
        raise ScheduleError(f"Unknown schedule kind {kind!r}.")
    if alert.expires_at is not None:
        times = [t for t in times if t < alert.expires_at]
    return times
