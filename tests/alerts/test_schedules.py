"""Schedules in the alert's timezone, with the documented DST policy."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.schedules import (
    ScheduleError,
    interval_occurrences,
    parse_crontab,
    parse_relative,
    resolve_local,
    wall_clock,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(instants: list[datetime], tz: ZoneInfo) -> list[str]:
    return [
        f"{wall_clock(t, tz):%m-%d %H:%M} {t.astimezone(tz).utcoffset().total_seconds() / 3600:+.0f}" for t in instants
    ]


class TestDaylightSavingPolicy:
    def test_a_skipped_local_time_fires_when_the_gap_ends(self):
        # 29 March 2026: Paris jumps from 02:00 to 03:00.
        assert resolve_local(datetime(2026, 3, 29, 2, 30), PARIS) == utc(2026, 3, 29, 1, 0)

    def test_a_repeated_local_time_fires_once_at_its_first_occurrence(self):
        # 25 October 2026: Paris falls back from 03:00 to 02:00; the first 02:30 is still summer time.
        assert resolve_local(datetime(2026, 10, 25, 2, 30), PARIS) == utc(2026, 10, 25, 0, 30)

    def test_an_ordinary_local_time_is_just_converted(self):
        assert resolve_local(datetime(2026, 7, 1, 9, 0), PARIS) == utc(2026, 7, 1, 7, 0)


class TestRelativeSpecs:
    @pytest.mark.parametrize(
        "spec, expected",
        [
            ("+2 days", utc(2026, 1, 17, 9, 15)),
            ("+48 hours", utc(2026, 1, 17, 9, 15)),
            ("+90 minutes", utc(2026, 1, 15, 10, 45)),
            ("+1 month -1 week at 10:00", utc(2026, 2, 8, 9, 0)),
            ("+1 year", utc(2027, 1, 15, 9, 15)),
            ("+1w +1d", utc(2026, 1, 23, 9, 15)),
        ],
    )
    def test_specs_count_from_the_base_in_the_alert_timezone(self, spec, expected):
        base = utc(2026, 1, 15, 9, 15)
        assert parse_relative(spec).resolve(base, PARIS) == expected

    def test_calendar_units_keep_the_wall_clock_across_a_dst_change_but_hours_do_not(self):
        base = utc(2026, 3, 28, 9, 0)  # 10:00 in Paris, the day before the change
        assert wall_clock(parse_relative("+1 day").resolve(base, PARIS), PARIS).time() == time(10, 0)
        assert wall_clock(parse_relative("+24 hours").resolve(base, PARIS), PARIS).time() == time(11, 0)

    def test_months_apply_before_weeks_and_days_whatever_the_order_of_the_terms(self):
        base = utc(2026, 1, 31, 9, 0)  # 10:00 in Paris
        # A month after 31 January is 28 February (the end of the shorter month); a week before that: the 21st.
        assert parse_relative("+1 month -1 week").resolve(base, PARIS) == utc(2026, 2, 21, 9, 0)
        assert parse_relative("-1 week +1 month").resolve(base, PARIS) == utc(2026, 2, 21, 9, 0)

    def test_a_typed_base_in_the_spring_gap_counts_from_the_end_of_the_gap(self):
        # The form reads a typed base with the DST policy: 02:30 on 29 March 2026 does not exist in Paris.
        base = resolve_local(datetime(2026, 3, 29, 2, 30), PARIS)
        assert wall_clock(parse_relative("+30 minutes").resolve(base, PARIS), PARIS) == datetime(2026, 3, 29, 3, 30)

    @pytest.mark.parametrize(
        "spec, message",
        [
            ("", "The relative time is empty"),
            ("tomorrow", "Could not read “tomorrow”"),
            ("+2 fortnights", "“fortnights” is not a unit"),
            ("+1 day at 25:00", "“at 25:00” is not a time of day"),
            ("+3 hours at 10:00", "goes with days, weeks, months or years"),
            ("2 days", "Could not read “2 days”"),
            ("+1 day and then some", "Could not read “and then some”"),
        ],
    )
    def test_unreadable_specs_say_what_was_expected(self, spec, message):
        with pytest.raises(ScheduleError) as error:
            parse_relative(spec)
        assert message in str(error.value)
        assert "expected" in str(error.value) or "use" in str(error.value) or "goes with" in str(error.value)

    @pytest.mark.parametrize(
        "spec", ["+9000 years", "-3000 years", "+3000000 days", "+99999999999 minutes", "+9999999999999999 minutes"]
    )
    def test_a_spec_that_lands_outside_the_calendar_is_a_schedule_error(self, spec):
        with pytest.raises(ScheduleError, match="outside the calendar"):
            parse_relative(spec).resolve(utc(2026, 1, 15, 9, 15), PARIS)


class TestCrontab:
    def test_weekday_mornings_in_a_non_utc_zone(self):
        crontab = parse_crontab("0 9 * * mon-fri")
        times = crontab.occurrences(utc(2026, 11, 20, 12, 0), NEW_YORK, 3)  # 07:00 on a Friday in New York
        assert local(times, NEW_YORK) == ["11-20 09:00 -5", "11-23 09:00 -5", "11-24 09:00 -5"]

    def test_across_the_spring_change_a_skipped_time_fires_when_the_gap_ends(self):
        times = parse_crontab("30 2 * * *").occurrences(utc(2026, 3, 27, 12, 0), PARIS, 3)
        assert local(times, PARIS) == ["03-28 02:30 +1", "03-29 03:00 +2", "03-30 02:30 +2"]

    def test_across_the_autumn_change_a_repeated_time_fires_once(self):
        times = parse_crontab("30 2 * * *").occurrences(utc(2026, 10, 24, 12, 0), PARIS, 3)
        assert local(times, PARIS) == ["10-25 02:30 +2", "10-26 02:30 +1", "10-27 02:30 +1"]
        assert times[1] - times[0] == timedelta(hours=25)

    def test_every_quarter_hour_through_the_repeated_hour_fires_each_minute_once(self):
        times = parse_crontab("*/30 * * * *").occurrences(utc(2026, 10, 24, 23, 45), PARIS, 6)
        assert local(times, PARIS) == [
            "10-25 02:00 +2", "10-25 02:30 +2", "10-25 03:00 +1", "10-25 03:30 +1", "10-25 04:00 +1", "10-25 04:30 +1",
        ]  # fmt: skip

    def test_day_of_month_and_day_of_week_must_both_match_as_in_celery(self):
        times = parse_crontab("0 12 13 * fri").occurrences(utc(2026, 1, 1), UTC, 2)
        assert [t.date().isoformat() for t in times] == ["2026-02-13", "2026-03-13"]

    def test_occurrences_are_strictly_after_the_given_time(self):
        assert parse_crontab("0 12 * * *").occurrences(utc(2026, 5, 1, 12, 0), UTC, 1) == [utc(2026, 5, 2, 12, 0)]

    @pytest.mark.parametrize(
        "text, message",
        [
            ("0 9 * *", "got 4 field(s)"),
            ("61 9 * * *", "The minute field “61”"),
            ("0 24 * * *", "The hour field “24”"),
            ("0 9 0 * *", "The day of month field “0”"),
            ("0 9 * 13 *", "The month field “13”"),
            ("0 9 * * 8", "The day of week field “8”"),
            ("mon 9 * * *", "The minute field “mon” must be numbers from 0 to 59"),
            ("*/0 9 * * *", "The minute field “*/0”"),
            # Celery's parser raises its own ParseException, not a ValueError, for these.
            ("1,,2 * * * *", "The minute field “1,,2” is not valid (empty part)"),
            ("-5 * * * *", "The minute field “-5” is not valid (negative numbers not supported)"),
            ("*/ * * * *", "The minute field “*/” is not valid (empty filter)"),
        ],
    )
    def test_invalid_fields_are_named_in_the_error(self, text, message):
        with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
            parse_crontab(text)


class TestInterval:
    def test_intervals_are_elapsed_time_from_the_start(self):
        start = utc(2026, 3, 28, 12, 0)
        times = interval_occurrences(start, timedelta(hours=12), utc(2026, 3, 28, 13, 0), 3)
        assert times == [utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 12, 0), utc(2026, 3, 30, 0, 0)]

    def test_the_start_itself_is_the_first_occurrence_when_it_is_still_ahead(self):
        start = utc(2026, 6, 1, 8, 0)
        assert interval_occurrences(start, timedelta(minutes=15), utc(2026, 5, 1), 2) == [
            start,
            start + timedelta(minutes=15),
        ]


BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
# The second pass of the repeated hour: Berlin falls back from 03:00 to 02:00 on 25 October 2026 (02:30 CET
# is 01:30 UTC); Lord Howe falls back half an hour, from 02:00 to 01:30, on 5 April 2026 (01:45 is 15:15 UTC).
BERLIN_SECOND_0230 = utc(2026, 10, 25, 1, 30)
LORD_HOWE_SECOND_0145 = utc(2026, 4, 4, 15, 15)


class TestRelativeSpecsFromTheRepeatedAutumnHour:
    @pytest.mark.parametrize(
        "spec, expected",
        [
            ("+24 hours", utc(2026, 10, 26, 1, 30)),
            ("+90 minutes", utc(2026, 10, 25, 3, 0)),
            ("+30 minutes", utc(2026, 10, 25, 2, 0)),
            ("+1 h +30 min", utc(2026, 10, 25, 3, 0)),
            ("-15 minutes", utc(2026, 10, 25, 1, 15)),
        ],
    )
    def test_elapsed_units_count_from_the_second_pass_in_berlin(self, spec, expected):
        assert BERLIN_SECOND_0230.astimezone(BERLIN).fold == 1
        assert parse_relative(spec).resolve(BERLIN_SECOND_0230, BERLIN) == expected

    @pytest.mark.parametrize(
        "spec, expected",
        [
            ("+24 hours", utc(2026, 4, 5, 15, 15)),
            ("+90 minutes", utc(2026, 4, 4, 16, 45)),
            ("+30 minutes", utc(2026, 4, 4, 15, 45)),
        ],
    )
    def test_elapsed_units_count_from_the_second_pass_on_lord_howe(self, spec, expected):
        assert LORD_HOWE_SECOND_0145.astimezone(LORD_HOWE).fold == 1
        assert parse_relative(spec).resolve(LORD_HOWE_SECOND_0145, LORD_HOWE) == expected

    @pytest.mark.parametrize(
        "base, tz, spec, expected_local",
        [
            # Calendar units keep the wall clock (02:30 the next day), then the minutes are elapsed time.
            (BERLIN_SECOND_0230, BERLIN, "+1 day +30 minutes", "10-26 03:00 +1"),
            (BERLIN_SECOND_0230, BERLIN, "+1 week -1 day +90 minutes", "10-31 04:00 +1"),
            (LORD_HOWE_SECOND_0145, LORD_HOWE, "+1 day +30 minutes", "04-06 02:15 +10.5"),
            # Terms that cancel out leave elapsed time only.
            (BERLIN_SECOND_0230, BERLIN, "+1 day -1 day +30 minutes", "10-25 03:00 +1"),
        ],
    )
    def test_mixed_specs_apply_calendar_units_on_the_wall_clock_then_elapsed_time(self, base, tz, spec, expected_local):
        instant = parse_relative(spec).resolve(base, tz)
        offset = instant.astimezone(tz).utcoffset().total_seconds() / 3600
        assert f"{wall_clock(instant, tz):%m-%d %H:%M} {offset:+g}" == expected_local

    def test_a_day_ahead_of_the_first_pass_lands_on_the_same_wall_clock_time(self):
        first_pass = utc(2026, 10, 25, 0, 30)  # 02:30 CEST
        assert parse_relative("+1 day").resolve(first_pass, BERLIN) == utc(2026, 10, 26, 1, 30)  # 02:30 CET
        assert parse_relative("+24 hours").resolve(first_pass, BERLIN) == utc(2026, 10, 26, 0, 30)  # 01:30 CET
