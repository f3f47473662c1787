"""Parsing and validating the six cron fields, with errors that name the bad field.

croniter is the parser for the five crontab fields (minute, hour, day_of_month, month,
day_of_week): `croniter.expand` turns them into allowed-value lists, and we keep those.
croniter's own errors name neither the field nor the reason, so when it refuses an
expression we find the field and say what is wrong (`25 is out of range 0-23`). The
`week` field (ISO week number, APScheduler style) is not crontab, so it is parsed here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from croniter import CroniterError, croniter

from engine.errors import TriggerError
from engine.triggers.cron_meaning import STAR_RANGES, canonical

#: The five crontab fields in crontab order, with their value ranges.
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month", "day_of_week")
#: the values each field accepts: what its `*` covers, and day_of_week's 7 (Sunday again)
_RANGES = {**STAR_RANGES, "day_of_week": (0, 7)}
_SYNTAX_HELP = "use numbers, names (jan, mon), ranges a-b, lists a,b and steps */n or a-b/n"
_NUMBER = re.compile(r"\d+")

#: Marker croniter puts in a day_of_month list for "L" (the month's last day).
LAST = "l"


@dataclass(frozen=True, slots=True)
class Expanded:
    """What croniter made of the five crontab fields; None means "every value" (`*`)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    #: ints 1-31 and possibly LAST; None when the field is `*`
    days_of_month: tuple[int | str, ...] | None
    months: tuple[int, ...]
    #: 0 = Sunday .. 6 = Saturday; None when the field is `*`
    days_of_week: tuple[int, ...] | None
    #: weekday -> which occurrences in the month (1-5, or LAST): `5#2`, `L5`
    nth_weekday: tuple[tuple[int, frozenset[int | str]], ...]


def normalise(field: str, value: object) -> str:
    """A field as a trimmed string; ints are accepted (JSON clients send `"hour": 9`)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TriggerError(field, f"expected a string such as '*' or '0', got {value!r}")
    text = str(value).strip()
    if not text:
        raise TriggerError(field, "is empty (use '*' for every value)")
    if any(char.isspace() for char in text):
        raise TriggerError(field, f"{text!r} contains spaces ({_SYNTAX_HELP})")
    return text


def expand(minute: str, hour: str, day_of_month: str, month: str, day_of_week: str) -> Expanded:
    """The allowed values of the five crontab fields, via croniter; TriggerError if invalid."""
    given = (minute, hour, day_of_month, month, day_of_week)
    texts = tuple(canonical(name, text) for name, text in zip(CRONTAB_FIELDS, given, strict=True))
    if "w" in day_of_month.lower():
        # croniter drops "W" (nearest weekday) from its expansion, so we cannot honour it.
        raise TriggerError(
            "day_of_month", f"{day_of_month!r}: 'W' (nearest weekday) is not supported"
        )
    try:
        lists, nth = croniter.expand(" ".join(texts))
    except CroniterError as error:
        raise _explain(texts, given, error) from None
    every_weekday = "*" in lists[4]
    return Expanded(
        minutes=_ints(lists[0], 0, 59),
        hours=_ints(lists[1], 0, 23),
        days_of_month=None if "*" in lists[2] else tuple(lists[2]),
        months=_ints(lists[3], 1, 12),
        days_of_week=None if every_weekday else tuple(int(v) for v in lists[4]),
        nth_weekday=()
        if every_weekday
        else tuple(sorted((int(day), frozenset(which)) for day, which in nth.items())),
    )


@lru_cache(maxsize=256)
def expand_seconds(text: str) -> tuple[int, ...]:
    """The seconds a `second` field allows (0-59, minute syntax), via croniter.

    Remembered by text: nearly every expression's second is "0", and expanding it again
    for each new minute/hour expression doubled the croniter work of compiling one."""
    try:
        lists, _ = croniter.expand(f"{canonical('second', text)} * * * *")
    except CroniterError as error:
        raise TriggerError("second", _reason("second", text, error)) from None
    return _ints(lists[0], 0, 59)


def _ints(values: Sequence[int | str], low: int, high: int) -> tuple[int, ...]:
    """Sorted values; a list holding `*` (croniter keeps it in `*,5`) is every value."""
    if "*" in values:
        return tuple(range(low, high + 1))
    return tuple(sorted(int(v) for v in values))


def _explain(texts: tuple[str, ...], given: tuple[str, ...], error: CroniterError) -> TriggerError:
    """Find which field croniter refused, by expanding each alone, and say why (in the
    words the caller used: `given`, not the canonical `texts`)."""
    for index, field in enumerate(CRONTAB_FIELDS):
        alone = ["*"] * len(CRONTAB_FIELDS)
        alone[index] = texts[index]
        try:
            croniter.expand(" ".join(alone))
        except CroniterError as alone_error:
            return TriggerError(field, _reason(field, given[index], alone_error))
    return TriggerError("day_of_week", f"{given[4]!r} cannot be combined this way: {error}")


def _reason(field: str, text: str, error: CroniterError) -> str:
    """The most specific complaint we can make about one refused field."""
    if "mixing literal values and nth" in str(error):
        return (
            f"{text!r} mixes nth-weekday entries (5#2, L5) with plain days in one list; "
            "croniter cannot match both kinds in one field"
        )
    low, high = _RANGES[field]
    for part in text.split(","):
        base, slash, step = part.partition("/")
        problem = slash and _bad_step(part, step)
        for number in _NUMBER.findall(base.split("#")[0]):
            problem = problem or _out_of_range(number, low, high)
        if problem:
            return problem
    return f"{text!r} is not a valid {field} ({_SYNTAX_HELP}; range {low}-{high})"


def _bad_step(part: str, step: str) -> str | None:
    if step.isdigit() and int(step) >= 1:
        return None
    return f"step {step!r} in {part!r} must be a whole number >= 1"


def _out_of_range(number: str, low: int, high: int) -> str | None:
    return None if low <= int(number) <= high else f"{number} is out of range {low}-{high}"


def parse_week(text: str) -> frozenset[int] | None:
    """ISO week numbers allowed by `text` (`*`, `5`, `1-10`, `*/2`, `10-20/3`, lists); None = all."""
    low, high = _RANGES["week"]
    allowed: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        problem = slash and _bad_step(part, step_text)
        if problem:
            raise TriggerError("week", problem)
        step = int(step_text) if slash else 1
        if base == "*":
            first, last = low, high
        else:
            first, last = _week_range(part, base, low, high)
            if slash and "-" not in base:
                last = high  # "5/2" means 5, 7, 9 ... as in crontab
        allowed.update(range(first, last + 1, step))
    return None if allowed == set(range(low, high + 1)) else frozenset(allowed)


def _week_range(part: str, base: str, low: int, high: int) -> tuple[int, int]:
    first_text, dash, last_text = base.partition("-")
    for number in (first_text, last_text) if dash else (first_text,):
        if not number.isdigit():
            raise TriggerError("week", f"{part!r} is not a valid week ({_SYNTAX_HELP}; range 1-53)")
        problem = _out_of_range(number, low, high)
        if problem:
            raise TriggerError("week", problem)
    first = int(first_text)
    last = int(last_text) if dash else first
    if last < first:
        raise TriggerError("week", f"range {base!r} runs backwards")
    return first, last
