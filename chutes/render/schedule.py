"""Cron expressions in plain English, for the generated README ("every day at 02:00 UTC")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chutes.job import cron_fields

__all__ = ["describe_schedule"]

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]  # fmt: skip
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MONTH_NAMES = {name[:3].lower(): str(index + 1) for index, name in enumerate(_MONTHS)}
_DAY_NAMES = {name[:3].lower(): str(index) for index, name in enumerate(_DAYS)}


@dataclass(frozen=True)
class _Field:
    """One cron field reduced to the shapes worth putting in words."""

    any: bool = False
    step: int | None = None  # "*/n"
    values: tuple[int, ...] = ()  # "a" or "a,b,c"
    range: tuple[int, int] | None = None  # "a-b"


def _parse(text: str, names: dict[str, str]) -> _Field | None:
    text = text.lower()
    for name, number in names.items():
        text = text.replace(name, number)
    if text == "*":
        return _Field(any=True)
    if match := re.fullmatch(r"\*/(\d+)", text):
        return _Field(step=int(match[1]))
    if re.fullmatch(r"\d+(,\d+)*", text):
        return _Field(values=tuple(int(part) for part in text.split(",")))
    if match := re.fullmatch(r"(\d+)-(\d+)", text):
        return _Field(range=(int(match[1]), int(match[2])))
    return None


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _time_of_day(minute: _Field, hour: _Field, tz: str) -> str | None:
    """The time-of-day phrase, or None when the minute/hour fields are beyond words."""
    if minute.any and hour.any:
        return "every minute"
    if minute.step and hour.any:
        return "every minute" if minute.step == 1 else f"every {minute.step} minutes"
    if minute.values and hour.values and len(minute.values) * len(hour.values) <= 6:
        times = [f"{h:02d}:{m:02d}" for h in hour.values for m in minute.values]
        return f"at {_join(times)} {tz}"
    if minute.values and hour.any:
        minutes = "minute" if len(minute.values) == 1 else "minutes"
        return f"every hour at {minutes} {_join([str(m) for m in minute.values])}"
    if minute.values and len(minute.values) == 1 and hour.step:
        every = "every hour" if hour.step == 1 else f"every {_ordinal(hour.step)} hour"
        return f"at minute {minute.values[0]} past {every}"
    if minute.values and len(minute.values) == 1 and hour.range:
        start, end = hour.range
        return f"every hour from {start:02d}:{minute.values[0]:02d} through {end:02d}:{minute.values[0]:02d} {tz}"
    if minute.step and hour.values and len(hour.values) == 1:
        return f"every {minute.step} minutes from {hour.values[0]:02d}:00 through {hour.values[0]:02d}:59 {tz}"
    return None


def _days(day: _Field, month: _Field, weekday: _Field) -> tuple[str, str] | None:
    """(prefix, suffix) phrases for the day fields; None when beyond words."""
    if not month.any and not month.values:
        return None
    in_months = "" if month.any else " in " + _join([_MONTHS[m - 1] for m in month.values if 1 <= m <= 12])
    if day.any and weekday.any:
        return ("every day " if month.any else "every day", in_months)
    if not day.any and not weekday.any:
        return None  # cron ORs day-of-month and weekday: too subtle to paraphrase
    if not weekday.any:
        names = [_DAYS[d % 7] for d in weekday.values]
        if weekday.range:
            start, end = weekday.range
            return f"{_DAYS[start % 7]} through {_DAYS[end % 7]} ", in_months
        if names:
            return f"every {_join(names)} ", in_months
        return None
    if day.values:
        days = _join([str(d) for d in day.values])
        label = "day" if len(day.values) == 1 else "days"
        where = "every month" if month.any else _join([_MONTHS[m - 1] for m in month.values if 1 <= m <= 12])
        return f"on {label} {days} of {where} ", ""
    return None


def describe_schedule(expression: str, timezone: str = "UTC") -> str:
    """Describe a 5-field cron expression in words, falling back to the expression itself.

    Example:
        >>> describe_schedule("0 2 * * *")
        'every day at 02:00 UTC'
        >>> describe_schedule("*/15 * * * *")
        'every 15 minutes'
        >>> describe_schedule("0 */6 * * *")
        'at minute 0 past every 6th hour'
        >>> describe_schedule("@weekly")
        'every Sunday at 00:00 UTC'
    """
    fields = cron_fields(expression).split()
    fallback = f"on the cron schedule `{expression}` ({timezone})"
    if len(fields) != 5:
        return fallback
    minute, hour, day = _parse(fields[0], {}), _parse(fields[1], {}), _parse(fields[2], {})
    month, weekday = _parse(fields[3], _MONTH_NAMES), _parse(fields[4], _DAY_NAMES)
    if minute is None or hour is None or day is None or month is None or weekday is None:
        return fallback
    time = _time_of_day(minute, hour, timezone)
    days = _days(day, month, weekday)
    if time is None or days is None:
        return fallback
    prefix, suffix = days
    if time.startswith("at ") and not (minute.step or hour.step):
        # A fixed time of day reads best after the days: "every Monday at 09:00 UTC".
        return f"{prefix.strip()} {time}{suffix}".strip()
    if prefix.startswith("every day"):
        return f"{time}{suffix}"
    qualifier = prefix.strip()
    if qualifier.startswith("every "):
        qualifier = "on " + qualifier.removeprefix("every ")
    separator = " " if qualifier.startswith("on ") else ", "
    return f"{time}{separator}{qualifier}{suffix}"
