"""A job's trigger in words, for people reading a job list: "at 09:00 every day
(Europe/Berlin time)", "every 30 seconds", "once, at 2026-12-31 23:59:59 CET".

Common shapes get plain sentences; anything else names the field values as given, so
the words are never wrong, only sometimes terse (`at minutes 0,30 past hours 9-17`).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.triggers import BoundedTrigger, CronTrigger, DateTrigger, IntervalTrigger, Trigger
from engine.triggers.common import show_in_zone

_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAY_NAMES = {name[:3].lower(): index for index, name in enumerate(_WEEKDAYS)}
_MONTH_NAMES = {name[:3].lower(): index for index, name in enumerate(_MONTHS, start=1)}
_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def describe(trigger: Trigger) -> str:
    """The whole schedule in one sentence."""
    inner = trigger.inner if isinstance(trigger, BoundedTrigger) else trigger
    if isinstance(inner, CronTrigger):
        text = _cron(inner)
    elif isinstance(inner, IntervalTrigger):
        assert inner.start_date is not None  # an IntervalTrigger always has its start
        start = show_in_zone(inner.start_date, inner.timezone)
        text = f"{_every(inner.interval.total_seconds())}, counted from {start}"
    elif isinstance(inner, DateTrigger):
        text = f"once, at {show_in_zone(inner.run_date, inner.timezone)}"
    else:
        text = inner.describe()
    if isinstance(trigger, BoundedTrigger):
        if trigger.start_date is not None:
            text += f"; not before {show_in_zone(trigger.start_date, trigger.timezone)}"
        if trigger.end_date is not None:
            text += f"; not after {show_in_zone(trigger.end_date, trigger.timezone)}"
        if trigger.jitter:
            text += (
                f"; each fire delayed at random by up to {_amount(trigger.jitter)} "
                "(never past the next one)"
            )
    return text


# -- intervals ------------------------------------------------------------------------------


def _every(seconds: float) -> str:
    amount = _amount(seconds)
    return "every " + amount.removeprefix("1 ") if amount.startswith("1 ") else f"every {amount}"


def _amount(seconds: float) -> str:
    """`30 seconds`, `1 minute`, `2 hours`: the largest unit that divides it."""
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds:g} seconds"


# -- cron -------------------------------------------------------------------------------------


def _cron(trigger: CronTrigger) -> str:
    fixed = all(f.isdigit() for f in (trigger.second, trigger.minute, trigger.hour))
    parts = [_time_of_day(trigger.second, trigger.minute, trigger.hour)]
    days = _days(trigger.day_of_month, trigger.day_of_week)
    if days != "every day" or fixed:
        parts.append(days)
    if trigger.month != "*":
        parts.append("in " + _listing(trigger.month, _month_word, "months"))
    if trigger.week != "*":
        parts.append(f"in ISO week{'s' if not trigger.week.isdigit() else ''} {trigger.week}")
    zone = trigger.timezone
    return " ".join(parts) + (" (UTC)" if zone == "UTC" else f" ({zone} time)")


def _time_of_day(second: str, minute: str, hour: str) -> str:
    """`at 09:00`, `every 5 minutes`, `at minute 0 of hours 9-17`, `every 10 seconds
    during 09:00`: the finest field that says something, then the coarser ones."""
    if minute.isdigit() and hour.isdigit():
        clock = f"{int(hour):02d}:{int(minute):02d}"
        if second.isdigit():
            return f"at {clock}" + (f":{int(second):02d}" if int(second) else "")
        return f"{_level(second, 'second', finest=True)} during {clock}"
    levels = [(minute, "minute"), (hour, "hour")]
    if second != "0":
        levels.insert(0, (second, "second"))
    (text, unit), coarser = levels[0], levels[1:]
    phrase = _level(text, unit, finest=True)
    for index, (text, unit) in enumerate(coarser):
        if text != "*":
            phrase += " of " + _level(text, unit, finest=False)
        elif all(rest == "*" for rest, _ in coarser[index:]):
            if index == 0 and phrase.startswith("at "):  # `at minute 5` of what
                phrase += f" of every {unit}"
            break
        else:
            phrase += f" of every {unit}"
    return phrase


def _level(text: str, unit: str, *, finest: bool) -> str:
    """One time field: `every minute`, `every 10 seconds`, `at minute 5` / `minute 5`,
    `at minutes 0,30` / `hours 9-17`."""
    if text == "*":
        return f"every {unit}"
    base, slash, step = text.partition("/")
    if slash and base == "*" and step.isdigit():
        return f"every {step} {unit}s" if step != "1" else f"every {unit}"
    shown = f"{int(text):02d}" if text.isdigit() and unit == "hour" else text
    named = f"{unit} {shown}" if text.isdigit() else f"{unit}s {text}"
    return f"at {named}" if finest else named


def _days(day_of_month: str, day_of_week: str) -> str:
    if day_of_month == "*" and day_of_week == "*":
        return "every day"
    by_month = None
    if day_of_month != "*":
        by_month = f"on {_listing(day_of_month, _day_word, 'days')} of the month"
    by_week = (
        None if day_of_week == "*" else "on " + _listing(day_of_week, _weekday_word, "weekdays")
    )
    if by_month and by_week:
        return f"{by_month} or {by_week}"
    return by_month or by_week or "every day"


def _listing(text: str, word: Callable[[str], str], unit: str) -> str:
    items = [_range(part, word, unit) for part in text.split(",")]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _range(part: str, word: Callable[[str], str], unit: str) -> str:
    if "/" in part:
        return f"{unit} {part}"  # steps: as given
    first, dash, last = part.partition("-")
    if dash:
        return f"{word(first)} to {word(last)}"
    return word(part)


def _day_word(text: str) -> str:
    if text.upper() == "L":
        return "the last day"
    return f"the {_ordinal(int(text))}" if text.isdigit() else text


def _weekday_word(text: str) -> str:
    lowered = text.lower()
    if "#" in lowered:
        day, _, nth = lowered.partition("#")
        return f"the {_ordinal(int(nth)) if nth.isdigit() else nth} {_weekday_word(day)}"
    if lowered.startswith("l") and len(lowered) > 1:
        return f"the last {_weekday_word(lowered[1:])}"
    if lowered.isdigit():
        return _WEEKDAYS[int(lowered) % 7]
    index = _WEEKDAY_NAMES.get(lowered)
    return _WEEKDAYS[index] if index is not None else text


def _month_word(text: str) -> str:
    lowered = text.lower()
    if lowered.isdigit() and 1 <= int(lowered) <= 12:
        return _MONTHS[int(lowered) - 1]
    index = _MONTH_NAMES.get(lowered)
    return _MONTHS[index - 1] if index is not None else text


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
