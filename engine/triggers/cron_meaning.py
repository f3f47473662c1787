"""What cron means by a field, where croniter reads it otherwise.

`canonical` rewrites one field's text, part by part, before croniter expands it, so the
expansion is what cron itself (cronie's `get_range` / `get_list`) makes of it:

- **An equal range is that one value.** `5-5` is 5, `sun-sun` is Sunday, `5-5#2` is
  `5#2`; croniter widens an equal range to the whole field (`5-5` fired every minute).
- **A list containing `*` is every value**, as `*` is (`*,0`, `*,sat#3`, `1,*`): the
  other entries add nothing. croniter kept the `*` in its value list, where it crashed
  the expansion (`int('*')`).
`check_steps` refuses, in new expressions only (a stored job keeps loading, with the
meaning croniter and cron give it: the range's first value):

- **A step larger than the range it steps through**, naming the field:
  `*/31` in day_of_month, `4-6/3`, `*/60` in minute, `10/55`. Such a step can only ever
  reach the range's first value, so it almost always hides a misunderstanding (a step
  restarts in every hour, day, month or week: `*/31` does not mean "every 31 days").
  A step of 1 is always allowed, and a step equal to the span is too (`*/59` = 0 and
  59): both reach more than one value or state it plainly.
- **A step over a range that wraps around** (`50-10/20`): croniter steps
  through such ranges wrongly (it gave 2 and 50 for `50-10/11`); write two ranges.
  Wrapping ranges without a step (`50-10`, `fri-mon`) keep croniter's meaning.

Anything `canonical` does not understand is passed through unchanged, for croniter to
accept or refuse (cron_fields.py words its refusals).
"""

from __future__ import annotations

from engine.errors import TriggerError

#: values each field's `*` steps through; day_of_week's `*` is 0-6 (7 is Sunday again)
STAR_RANGES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day_of_month": (1, 31),
    "month": (1, 12),
    "day_of_week": (0, 6),
    "week": (1, 53),
}
_NAMES = {
    "month": {
        name: number
        for number, name in enumerate(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
            start=1,
        )
    },
    "day_of_week": {
        name: number
        for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
    },
}
#: what a step starts again in, for the refusal's explanation
_RESTARTS = {
    "second": "minute",
    "minute": "hour",
    "hour": "day",
    "day_of_month": "month",
    "month": "year",
    "day_of_week": "week",
    "week": "year",
}


def canonical(field: str, text: str) -> str:
    """`text` rewritten so croniter expands it as cron means it (see module docstring)."""
    parts = text.split(",")
    if len(parts) > 1 and "*" in parts:
        return "*"
    return ",".join(_canonical_part(field, part) for part in parts)


def number(field: str, text: str) -> int | None:
    """A field value as a number: digits, or a month / weekday name; None otherwise."""
    lowered = text.lower()
    if lowered.isdigit():
        return int(lowered)
    return _NAMES.get(field, {}).get(lowered)


def check_steps(field: str, text: str) -> None:
    """TriggerError naming `field` when a part of `text` steps further than its range,
    or over a wrapping range (see the module docstring)."""
    for part in text.split(","):
        _check_step(field, part)


def _check_step(field: str, part: str) -> None:
    """Refuse `part` (`*/n`, `a-b/n`, `a/n`) when its step n (2 or more) is larger than
    the range it steps through; anything else is left for the parser to judge."""
    base, slash, step_text = part.partition("/")
    if not slash or not step_text.isdigit() or int(step_text) < 2:
        return
    reach = _reach(field, base)
    if reach is None:
        return
    first, last, distance = reach
    if last < first:
        raise TriggerError(
            field,
            f"{part!r} steps through a range that wraps around ({first}-{last}), which "
            "croniter does not step through correctly; write it as two ranges instead, "
            f"such as {first}-{STAR_RANGES[field][1]}/{step_text},"
            f"{STAR_RANGES[field][0]}-{last}/{step_text}",
        )
    if int(step_text) <= distance:
        return
    raise TriggerError(
        field,
        f"step {step_text} in {part!r} is larger than the range {first}-{last} it steps "
        f"through, so only {first} would ever match (a step starts again every "
        f"{_RESTARTS.get(field, 'cycle')}); write {str(first)!r} if that is what you mean",
    )


def _canonical_part(field: str, part: str) -> str:
    base, slash, step_text = part.partition("/")
    value_range, hash_sign, nth = base.partition("#")
    head, dash, tail = value_range.partition("-")
    if not dash or number(field, head) is None or number(field, head) != number(field, tail):
        return part
    # cronie's get_range: `a-a` is the single value a, whatever the step
    if slash and not (step_text.isdigit() and int(step_text) >= 1):
        return part  # a malformed step: left for the parser to refuse
    return f"{head}{hash_sign}{nth}"


def _reach(field: str, base: str) -> tuple[int, int, int] | None:
    """(first, last, distance from first to last) of the values `base` steps through;
    None when `base` is not a plain `*`, `a` or `a-b` (names allowed)."""
    low, high = STAR_RANGES[field]
    if base == "*":
        return low, high, high - low
    head, dash, tail = base.partition("-")
    first = number(field, head)
    if first is None:
        return None
    if not dash:  # `a/n`: a, a+n ... up to the field's end
        return first, max(first, high), max(0, high - first)
    last = number(field, tail)
    if last is None:
        return None
    if last >= first:
        return first, last, last - first
    return first, last, (high - first) + (last - low) + 1  # wrapping around, as `50-10`
