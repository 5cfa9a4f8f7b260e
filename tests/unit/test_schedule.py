"""Retraining schedules: intervals and cron lines, their next times, and every invalid form.

Times are UTC. 2025-03-01 is a Saturday, 2025-03-03 a Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelcycle.config.schedule import (
    CronSchedule,
    IntervalSchedule,
    parse_schedule,
)
from modelcycle.config.spec import parse_spec
from modelcycle.errors import ConfigError


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- intervals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 7 * 86400),
        ("12h", 12 * 3600),
        ("30m", 1800),
        ("90s", 90),
        ("3600", 3600),  # a plain number is seconds, as for every duration in the spec
        (" 1.5h ", 5400),
        ("7 d", 7 * 86400),
    ],
)
def test_interval_parses(text: str, seconds: float) -> None:
    schedule = parse_schedule(text)
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.seconds == seconds
    assert str(schedule) == text.strip()
    last = at(2025, 3, 1, 12)
    assert schedule.next_after(last) == last + timedelta(seconds=seconds)


def test_interval_counts_from_the_last_run_not_from_a_grid() -> None:
    schedule = parse_schedule("7d")
    assert schedule.next_after(at(2025, 3, 1, 12, 34, 56)) == at(2025, 3, 8, 12, 34, 56)


# --- cron: next time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "after", "expected"),
    [
        # plain times; the next time is strictly after the given one
        ("0 3 * * 1", at(2025, 3, 1, 12), at(2025, 3, 3, 3)),
        ("0 3 * * *", at(2025, 3, 1, 3), at(2025, 3, 2, 3)),
        ("0 3 * * *", at(2025, 3, 1, 2, 59, 59), at(2025, 3, 1, 3)),
        ("0 3 * * *", at(2025, 3, 1, 3, 0, 30), at(2025, 3, 2, 3)),
        ("* * * * *", at(2025, 3, 1, 12, 0, 1), at(2025, 3, 1, 12, 1)),
        # steps, ranges, lists
        ("*/15 * * * *", at(2025, 3, 1, 12, 7), at(2025, 3, 1, 12, 15)),
        ("*/15 * * * *", at(2025, 3, 1, 12, 45), at(2025, 3, 1, 13)),
        ("10-50/20 * * * *", at(2025, 3, 1, 12, 31), at(2025, 3, 1, 12, 50)),
        ("10-50/20 * * * *", at(2025, 3, 1, 12, 50), at(2025, 3, 1, 13, 10)),
        ("5/20 * * * *", at(2025, 3, 1, 12, 46), at(2025, 3, 1, 13, 5)),  # a/n: a to the end
        ("0 8-18/4 * * *", at(2025, 3, 1, 16, 1), at(2025, 3, 2, 8)),  # 8, 12, 16
        ("15,45 9,17 * * *", at(2025, 3, 1, 9, 15), at(2025, 3, 1, 9, 45)),
        ("15,45 9,17 * * *", at(2025, 3, 1, 9, 45), at(2025, 3, 1, 17, 15)),
        # month ends, leap years, year ends
        ("0 0 31 * *", at(2025, 4, 1), at(2025, 5, 31)),  # April has no 31st
        ("0 0 31 * *", at(2025, 1, 31), at(2025, 3, 31)),  # nor February
        ("0 0 30 * *", at(2025, 1, 30), at(2025, 3, 30)),
        ("0 0 29 2 *", at(2025, 3, 1), at(2028, 2, 29)),
        ("0 0 29 2 *", at(2096, 3, 1), at(2104, 2, 29)),  # 2100 is no leap year
        ("0 12 28-31 2 *", at(2024, 2, 29, 12), at(2025, 2, 28, 12)),
        ("59 23 * * *", at(2024, 12, 31, 23, 59), at(2025, 1, 1, 23, 59)),
        ("0 0 1 * *", at(2024, 12, 15), at(2025, 1, 1)),
        ("0 0 1 1 *", at(2025, 1, 1), at(2026, 1, 1)),
        # day of week: 0 and 7 are Sunday; names
        ("0 0 * * 0", at(2025, 3, 1), at(2025, 3, 2)),
        ("0 0 * * 7", at(2025, 3, 1), at(2025, 3, 2)),
        ("0 0 * * sun", at(2025, 3, 1), at(2025, 3, 2)),
        ("0 0 * * 5-7", at(2025, 3, 1), at(2025, 3, 2)),
        ("0 0 * * 5-7", at(2025, 3, 2), at(2025, 3, 7)),
        ("0 0 * * 6,7", at(2025, 3, 2), at(2025, 3, 8)),
        ("0 0 * * mon/2", at(2025, 3, 1), at(2025, 3, 2)),  # 1/2 runs to 7: Mon, Wed, Fri, Sun
        ("0 0 * * mon/2", at(2025, 3, 3), at(2025, 3, 5)),
        ("30 8 * jan,jul mon-fri", at(2025, 3, 1), at(2025, 7, 1, 8, 30)),
        ("30 8 * JAN-mar MON", at(2025, 3, 31, 9), at(2026, 1, 5, 8, 30)),
        # both days restricted: either matches (the 13th, or a Friday)
        ("0 0 13 * 5", at(2025, 3, 1), at(2025, 3, 7)),
        ("0 0 13 * 5", at(2025, 3, 8), at(2025, 3, 13)),
        ("0 0 1-31/2 * 1", at(2025, 3, 3), at(2025, 3, 5)),  # odd days or Mondays
        # one day field starts with '*': both must match (Vixie cron)
        ("0 0 13 * *", at(2025, 3, 1), at(2025, 3, 13)),
        ("0 0 * * 5", at(2025, 3, 8), at(2025, 3, 14)),
        ("0 0 */2 * 1", at(2025, 3, 1), at(2025, 3, 3)),  # odd days that are Mondays
        ("0 0 */2 * 1", at(2025, 3, 3), at(2025, 3, 17)),
        ("0 0 13 * */7", at(2025, 1, 1), at(2025, 4, 13)),  # a Sunday the 13th
        ("0 0 30 2 1", at(2025, 1, 1), at(2025, 2, 3)),  # Feb 30 never, but Mondays do
        # nicknames
        ("@hourly", at(2025, 3, 1, 12, 30), at(2025, 3, 1, 13)),
        ("@daily", at(2025, 3, 1, 12), at(2025, 3, 2)),
        ("@midnight", at(2025, 3, 1, 12), at(2025, 3, 2)),
        ("@weekly", at(2025, 3, 1, 12), at(2025, 3, 2)),
        ("@monthly", at(2025, 3, 1, 12), at(2025, 4, 1)),
        ("@yearly", at(2025, 3, 1, 12), at(2026, 1, 1)),
        ("@Annually", at(2025, 3, 1, 12), at(2026, 1, 1)),
    ],
)
def test_cron_next_after(line: str, after: datetime, expected: datetime) -> None:
    schedule = parse_schedule(line)
    assert isinstance(schedule, CronSchedule)
    result = schedule.next_after(after)
    assert result == expected, f"{line} after {after}: {result:%a %Y-%m-%d %H:%M}"
    assert result.tzinfo is UTC


def test_cron_works_in_utc_whatever_the_input_zone() -> None:
    schedule = parse_schedule("0 3 * * *")
    berlin = timezone(timedelta(hours=1))
    assert schedule.next_after(datetime(2025, 3, 1, 3, 30, tzinfo=berlin)) == at(2025, 3, 1, 3)
    assert schedule.next_after(datetime(2025, 3, 1, 2, 30)) == at(2025, 3, 1, 3)  # naive is UTC


def test_cron_day_fields_record_whether_they_are_restricted() -> None:
    schedule = parse_schedule("0 0 */2 * 1-5")
    assert isinstance(schedule, CronSchedule)
    assert (schedule.days_restricted, schedule.weekdays_restricted) == (False, True)
    assert schedule.weekdays == frozenset({1, 2, 3, 4, 5})
    sundays = parse_schedule("0 0 * * 0,7")
    assert isinstance(sundays, CronSchedule)
    assert sundays.weekdays == frozenset({0})


# --- due ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "last", "now", "due"),
    [
        ("7d", None, at(2025, 3, 1), True),  # never ran
        ("7d", at(2025, 3, 1), at(2025, 3, 7, 23, 59), False),
        ("7d", at(2025, 3, 1), at(2025, 3, 8), True),  # exactly one interval later
        ("7d", at(2025, 3, 1), at(2025, 4, 1), True),
        ("0 3 * * 1", None, at(2025, 3, 1), True),
        ("0 3 * * 1", at(2025, 3, 1), at(2025, 3, 3, 2, 59), False),
        ("0 3 * * 1", at(2025, 3, 1), at(2025, 3, 3, 3), True),
        ("0 3 * * 1", at(2025, 3, 3, 3), at(2025, 3, 9), False),  # ran at the time itself
        ("0 3 * * 1", at(2025, 3, 3, 3), datetime(2025, 3, 10, 3), True),  # naive now is UTC
    ],
)
def test_due(text: str, last: datetime | None, now: datetime, due: bool) -> None:
    assert parse_schedule(text).due(last, now) is due


# --- invalid schedules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "schedule is empty"),
        ("   ", "schedule is empty"),
        ("soon", "'soon' is neither an interval nor a cron line"),
        ("-5m", "neither an interval nor a cron line"),
        ("0d", "the interval must be longer than 0"),
        ("1 2 3", "has 3 fields, but a cron line has 5"),
        ("0 0 * * * *", "has 6 fields, but a cron line has 5"),
        ("60 * * * *", "minute field '60': 60 is outside 0-59"),
        ("* 24 * * *", "hour field '24': 24 is outside 0-23"),
        ("* * 0 * *", "day-of-month field '0': 0 is outside 1-31"),
        ("* * 32 * *", "day-of-month field '32': 32 is outside 1-31"),
        ("* * * 13 *", "month field '13': 13 is outside 1-12"),
        ("* * * 0 *", "month field '0': 0 is outside 1-12"),
        ("* * * * 8", "day-of-week field '8': 8 is outside 0-7"),
        ("*/0 * * * *", "step '0' must be a whole number of at least 1"),
        ("*/x * * * *", "step 'x' must be a whole number of at least 1"),
        ("5-1 * * * *", "range 5-1 runs backwards"),
        ("0 0 * * fri-mon", "range fri-mon runs backwards"),
        ("1,,2 * * * *", "empty item in the list"),
        ("-5 * * * *", "'' is not a number"),
        ("a * * * *", "minute field 'a': 'a' is not a number"),
        ("0 0 * foo *", "'foo' is not a number or a name (jan, feb,"),
        ("0 0 * * funday", "'funday' is not a number or a name (sun, mon,"),
        ("0 0 30 2 *", "never fires: day-of-month 30 does not occur in month 2"),
        ("0 0 31 4,6,9,11 *", "never fires: day-of-month 31 does not occur in month 4,6,9,11"),
        ("0 0 30,31 feb *", "never fires"),
        ("@reboot", "unknown nickname; use one of @yearly"),
    ],
)
def test_invalid_schedules_name_the_problem_and_an_example(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="0 3 \\* \\* 1") as info:
        parse_schedule(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


# --- the spec validates its schedule --------------------------------------------------------

SPEC = 'name = "rent"\ntarget = "rent"\n\n[data]\npath = "data/rent.csv"\n\n[retraining]\n{line}\n'


@pytest.mark.parametrize("schedule", ["7d", "0 3 * * 1", "@weekly", "*/30 8-18 * * mon-fri"])
def test_spec_accepts_a_valid_schedule_and_keeps_its_text(schedule: str) -> None:
    spec = parse_spec(SPEC.format(line=f'schedule = "{schedule}"'))
    assert spec.retraining.schedule == schedule


def test_spec_without_a_schedule_has_none() -> None:
    assert parse_spec(SPEC.format(line="auto = true")).retraining.schedule is None


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("0 25 * * *", "hour field '25': 25 is outside 0-23"),
        ("every week", "has 2 fields, but a cron line has 5"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_spec_rejects_a_bad_schedule_with_its_key_and_the_fix(schedule: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(SPEC.format(line=f'schedule = "{schedule}"'))
    message = info.value.message
    assert "retraining.schedule" in message
    assert fragment in message
    assert "0 3 * * 1" in message
