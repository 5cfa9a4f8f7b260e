"""Schedules of ``[retraining] schedule``: an interval (``'7d'``) or a 5-field cron line, in UTC.

:func:`parse_schedule` turns the spec's text into a :class:`Schedule`; its
:meth:`~Schedule.next_after` says when the schedule next fires after a run, and
:meth:`~Schedule.due` whether that time has come.

- An interval (``'30m'``, ``'12h'``, ``'7d'``, or a plain number of seconds) fires one interval
  after the last run: it counts from the run, not from a fixed grid.
- A cron line ``minute hour day-of-month month day-of-week`` fires at the first matching minute
  strictly after the last run. Each field takes ``*``, a number, a list ``a,b``, a range ``a-b``
  and steps ``*/n``, ``a-b/n`` or ``a/n`` (from ``a`` to the field's end). Months and days of the
  week also take English names (``jan``, ``mon-fri``); day-of-week runs 0-7, where 0 and 7 are
  both Sunday (so ``mon/2`` is Monday, Wednesday, Friday and Sunday, as in cron). The nicknames
  ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly`` and ``@yearly``
  (``@annually``) stand for their usual lines.

Days follow Vixie cron (the cron of most Linux systems): when both day-of-month and day-of-week
are restricted, a day matching *either* fires (``0 3 1 * 1``: the 1st of each month and every
Monday). A day field that starts with ``*`` (``*``, ``*/2``) counts as unrestricted, so then both
must match (``0 3 */2 * 1``: Mondays with an odd day of the month), as in Vixie cron. Lines that
can never fire (``0 0 30 2 *``) are rejected.

This module only uses the standard library: :mod:`modelcycle.config.spec` imports it to validate
the spec, so it reads ``parse_duration`` from there lazily.
"""

from __future__ import annotations

import calendar
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EXAMPLE = (
    "write an interval like '7d', '12h' or '30m', or a cron line "
    "'minute hour day-of-month month day-of-week' like '0 3 * * 1' (03:00 UTC every Monday)"
)
"""The hint a schedule error ends with when the text is no schedule at all."""
CRON_EXAMPLE = "a valid cron line looks like '0 3 * * 1-5' (03:00 UTC, Monday to Friday)"
"""The hint a cron line's error ends with."""

NICKNAMES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""Cron nicknames and the lines they stand for."""

MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, MONTH_NAMES),
    ("day-of-week", 0, 7, DAY_NAMES),
)
_LONGEST_MONTH = {month: calendar.monthrange(2024, month)[1] for month in range(1, 13)}
_SEARCH_YEARS = 400
"""A full Gregorian cycle: a cron line that has not fired within it never will."""


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Schedule(ABC):
    """When a recurring job runs next.

    Attributes:
        text: The schedule as written in the spec.
    """

    text: str

    @abstractmethod
    def next_after(self, moment: datetime) -> datetime:
        """The first time the schedule fires strictly after ``moment``, aware in UTC.

        Args:
            moment: Usually the last run; a naive datetime is taken to be UTC.
        """

    def due(self, last_run: datetime | None, now: datetime) -> bool:
        """Whether a run is due at ``now``: never ran, or the next time after the last run passed.

        Args:
            last_run: The last run, or ``None`` when there was none.
            now: The current time; naive datetimes are taken to be UTC.
        """
        return last_run is None or self.next_after(last_run) <= _utc(now)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class IntervalSchedule(Schedule):
    """A fixed interval, counted from the last run.

    Attributes:
        seconds: The interval's length (positive).
    """

    seconds: float

    def next_after(self, moment: datetime) -> datetime:
        """One interval after ``moment``, in UTC."""
        return _utc(moment) + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """A 5-field cron line, in UTC.

    Attributes:
        minutes: Matching minutes (0-59).
        hours: Matching hours (0-23).
        days: Matching days of the month (1-31).
        months: Matching months (1-12).
        weekdays: Matching days of the week (0-6, 0 = Sunday).
        days_restricted: The day-of-month field does not start with ``*``.
        weekdays_restricted: The day-of-week field does not start with ``*``.
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def day_matches(self, moment: datetime) -> bool:
        """Whether the line fires on ``moment``'s day (its month is checked separately)."""
        day_ok = moment.day in self.days
        weekday_ok = (moment.weekday() + 1) % 7 in self.weekdays  # Monday is 0 in Python
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after ``moment``, in UTC.

        Raises:
            ValueError: Nothing matches within 400 years (cannot happen for a parsed line).
        """
        t = _utc(moment).replace(second=0, microsecond=0) + timedelta(minutes=1)
        last_year = t.year + _SEARCH_YEARS
        while t.year <= last_year:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self.day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise ValueError(f"schedule {self.text!r} never fires")


def parse_schedule(text: str) -> Schedule:
    """Parse an interval (``'7d'``) or a 5-field cron line (``'0 3 * * 1'``).

    Args:
        text: The schedule as written in the spec.

    Returns:
        An :class:`IntervalSchedule` or a :class:`CronSchedule`.

    Raises:
        ValueError: Not a schedule; the message names the problem and shows a valid one.
    """
    stripped = str(text).strip()
    if not stripped:
        raise ValueError(f"schedule is empty; {EXAMPLE}")
    if stripped.startswith("@"):
        line = NICKNAMES.get(stripped.lower())
        if line is None:
            raise ValueError(
                f"schedule {text!r}: unknown nickname; use one of {', '.join(NICKNAMES)}, "
                f"or {EXAMPLE}"
            )
        return _parse_cron(stripped, line.split())
    fields = stripped.split()
    if len(fields) == len(_FIELDS):
        return _parse_cron(stripped, fields)
    from modelcycle.config.spec import parse_duration  # spec imports this module

    try:
        seconds = parse_duration(stripped)
    except ValueError:
        if len(fields) > 1:
            raise ValueError(
                f"schedule {text!r} has {len(fields)} fields, but a cron line has 5 "
                f"(minute hour day-of-month month day-of-week); {EXAMPLE}"
            ) from None
        raise ValueError(
            f"schedule {text!r} is neither an interval nor a cron line; {EXAMPLE}"
        ) from None
    if seconds <= 0:
        raise ValueError(f"schedule {text!r}: the interval must be longer than 0; {EXAMPLE}")
    return IntervalSchedule(text=stripped, seconds=seconds)


def _parse_cron(text: str, fields: list[str]) -> CronSchedule:
    values = [_parse_field(text, field, *spec) for field, spec in zip(fields, _FIELDS, strict=True)]
    minutes, hours, days, months, weekdays = values
    schedule = CronSchedule(
        text=text,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(day % 7 for day in weekdays),
        days_restricted=not fields[2].startswith("*"),
        weekdays_restricted=not fields[4].startswith("*"),
    )
    either = schedule.days_restricted and schedule.weekdays_restricted
    if not either and not any(day <= _LONGEST_MONTH[month] for day in days for month in months):
        raise ValueError(
            f"schedule {text!r} never fires: day-of-month {_listing(days)} does not occur in "
            f"month {_listing(months)}; {CRON_EXAMPLE}"
        )
    return schedule


def _parse_field(
    text: str, field: str, name: str, low: int, high: int, names: dict[str, int]
) -> frozenset[int]:
    """The values of one cron field: ``*``, ``n``, ``a-b``, steps, and lists of these."""

    def fail(problem: str) -> ValueError:
        return ValueError(f"schedule {text!r}: {name} field {field!r}: {problem}; {CRON_EXAMPLE}")

    def number(token: str) -> int:
        if token.lower() in names:
            return names[token.lower()]
        if not token.isdigit():
            hint = f" or a name ({', '.join(names)})" if names else ""
            raise fail(f"{token!r} is not a number{hint}")
        value = int(token)
        if not low <= value <= high:
            raise fail(f"{value} is outside {low}-{high}")
        return value

    found: set[int] = set()
    for item in field.split(","):
        if not item:
            raise fail("empty item in the list")
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise fail(f"step {step_text!r} must be a whole number of at least 1")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = number(start), number(end)
            if first > last:
                raise fail(f"range {span} runs backwards (write the smaller value first)")
        else:
            first = number(span)
            last = high if slash else first  # 'a/n': from a to the field's end
        found.update(range(first, last + 1, step))
    return frozenset(found)


def _listing(values: frozenset[int]) -> str:
    ordered = sorted(values)
    return ",".join(str(value) for value in ordered)
