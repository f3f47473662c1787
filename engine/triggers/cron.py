"""CronTrigger: crontab fields plus an ISO `week` filter, read in a per-job time zone.

Fields (the scheduler surface's names): minute 0-59, hour 0-23, day_of_month 1-31 (and
`L`, the last day), month 1-12 (or jan-dec), day_of_week 0-6 with 0 = Sunday (7 is
Sunday too; names sun-sat; `5#2` = second Friday, `L5` = last Friday), week 1-53 (ISO
week number). Each takes `*`, numbers, ranges, lists and steps (`*/15`, `1-10/2`).
croniter parses and validates the five crontab fields; fires are computed by the walk in
cron_schedule.py. Fires are on whole minutes, or whole seconds with the optional
`second` field (0-59, minute syntax; a six-field crontab line has it first).

Where croniter reads a field otherwise than cron does, cron wins (cron_meaning.py): an
equal range is that one value (`5-5`, `sun-sun`), a list containing `*` is every value
(`*,0`), and a step larger than the range it steps through is refused (`*/31` days,
`4-6/3`), as is a step over a wrapping range (`50-10/20`). A range whose start is past
its end wraps round, as croniter reads it: `22-2` hours are 22, 23, 0, 1 and 2, `fri-mon`
is Friday to Monday (APScheduler refuses such a range). There is no `year` field
(APScheduler has one): a schedule that must stop has an `end_date`
(engine/triggers/bounded.py). tests/test_triggers_cron_peers.py runs this trigger
against the behaviours croniter's and APScheduler's test suites check, case by case.

Day matching. Only day_of_month and day_of_week decide which days fire; `week` then
narrows them (AND). A field is *restricted* unless it is `*` (or a list containing `*`,
or a range covering every value, which croniter folds to `*`).
- Neither restricted: every day. One restricted: the days it matches.
- Both restricted: a day matching *either* fires (POSIX cron's rule): `0 0 1 * 1` is the
  1st and every Monday. (APScheduler's CronTrigger wants both, so there it is a Monday
  the 1st; croniter's `day_or=False` does the same, and cronwell has no such switch.)
- `L` in day_of_month is the month's last day (28-31) and lists with other days
  (`1,L`: the first and the last). `W` (nearest weekday) is refused.
- `d#n` in day_of_week is the n-th (1-5) weekday d of the month; a month without a fifth
  one has no such day. `Ld` is the last weekday d of the month. Several may be listed
  (`5#2,L5`, `mon#1,mon#3`), but not mixed with plain weekdays (`5#2,sat` is refused,
  as croniter refuses it), and `L` alone in day_of_week is refused.
- `#` and `L` entries are *ordinary restricted* day_of_week values: with a restricted
  day_of_month the either-rule above still holds, so `0 0 1 * 5#2` fires on the 1st and
  on the second Friday, and `0 0 L * L5` on the last day and the last Friday. This is
  not croniter's reading: croniter requires *both* fields to match when day_of_week has
  a `#` or `L` entry (it finds no date at all for `0 0 1 * 5#2`, and only last Fridays
  for `0 0 L * L5`). Vixie cron and cronie have no `#` or `L`.

DST rule (Vixie cron's, for a zone that changes offset). The fields are read on the
zone's wall clock. A job is a *wildcard* job when its minute or hour field starts with
`*` (`*/5 * ...`, `0 * ...`), otherwise a *fixed-time* job (`30 2 ...`, `0 9-17 ...`);
the `second` field does not change which kind a job is.
- Spring forward, a wall time that does not exist (02:30 on a day New York jumps from
  02:00 to 03:00): a fixed-time job fires once, at the first valid instant after the
  gap (03:00 local, however many of its times fell in the gap); a wildcard job skips
  the missing times and keeps to the real clock (its 03:00, 03:30 ... fires stand).
- Fall back, a wall time that occurs twice (01:30 on a day New York repeats 01:00-02:00):
  a fixed-time job fires once, at the first occurrence; a wildcard job fires at both
  occurrences, so an hourly job keeps firing every real hour.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, NoReturn

from engine.errors import TriggerError
from engine.triggers.common import DEFAULT_ZONE, check_known_keys, load_zone
from engine.triggers.cron_fields import CRONTAB_FIELDS, normalise
from engine.triggers.cron_meaning import check_steps
from engine.triggers.cron_schedule import CronSchedule, compile_schedule

FIELD_NAMES = (*CRONTAB_FIELDS, "week")
#: the compiled schedule's field order: the six above, then `second` ("0" unless set)
_SCHEDULE_FIELDS = (*FIELD_NAMES, "second")
_ARGUMENTS = (*_SCHEDULE_FIELDS, "timezone")
_KEYS = frozenset({"kind", *_ARGUMENTS})
#: crontab's nicknames, as croniter and Vixie cron know them.
_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _schedule_from(values: tuple[object, ...], timezone: object, new: bool) -> CronSchedule:
    """Validate and normalise the raw field values, then fetch the shared schedule.

    `new` expressions are also held to the step rules (cron_meaning.check_steps); stored
    ones are not, so a job saved before those rules keeps loading, with the meaning cron
    gives it."""
    fields = tuple(
        normalise(name, value) for name, value in zip(_SCHEDULE_FIELDS, values, strict=True)
    )
    if new:
        for name, text in zip(_SCHEDULE_FIELDS, fields, strict=True):
            check_steps(name, text)
    return compile_schedule(fields, load_zone(timezone).key)


@lru_cache(maxsize=4096, typed=True)
def _schedule_for(*values: object) -> CronSchedule:
    """Raw constructor arguments -> schedule: the common case (the same expression again)
    costs one cache lookup. `typed` keeps True apart from 1 so bools are still refused.
    The last value says whether the expression is new (see `_schedule_from`)."""
    return _schedule_from(values[:-2], values[-2], bool(values[-1]))


class CronTrigger:
    """Immutable; holds only a reference to the shared compiled schedule (one slot).

    Jobs with the same fields and zone share one CronSchedule, so a trigger costs one
    small object however many jobs use the expression.
    """

    __slots__ = ("_schedule",)
    _schedule: CronSchedule

    kind = "cron"

    def __init__(
        self,
        minute: str | int = "*",
        hour: str | int = "*",
        day_of_month: str | int = "*",
        month: str | int = "*",
        day_of_week: str | int = "*",
        week: str | int = "*",
        timezone: str = DEFAULT_ZONE,
        *,
        second: str | int = "0",
        stored: bool = False,
    ) -> None:
        """`second` (0-59, minute syntax) makes fires finer than whole minutes.
        `stored=True` (how `from_dict` rebuilds a saved trigger) skips the rules only
        new expressions are held to (steps larger than their range)."""
        new = not stored
        fields = (minute, hour, day_of_month, month, day_of_week, week, second)
        try:
            schedule = _schedule_for(*fields, timezone, new)
        except TypeError:  # an unhashable value: say which field, in our words
            _schedule_from(fields, timezone, new)
            raise
        object.__setattr__(self, "_schedule", schedule)

    @classmethod
    def from_crontab(cls, expression: str, timezone: str = DEFAULT_ZONE) -> CronTrigger:
        """`"*/5 * * * *"` (five fields, six with seconds first, or a nickname like
        `@daily`) as a CronTrigger."""
        if not isinstance(expression, str):
            raise TriggerError("expression", f"expected a crontab string, got {expression!r}")
        text = _NICKNAMES.get(expression.strip().lower(), expression)
        parts = text.split()
        second = "0"
        if len(parts) == len(CRONTAB_FIELDS) + 1:
            second, *parts = parts
        if len(parts) != len(CRONTAB_FIELDS):
            raise TriggerError(
                "expression",
                f"{expression!r} has {len(text.split())} fields; expected 5 "
                "(minute hour day_of_month month day_of_week), 6 (second first) or one of "
                f"{', '.join(sorted(_NICKNAMES))}",
            )
        minute, hour, day_of_month, month, day_of_week = parts
        return cls(minute, hour, day_of_month, month, day_of_week, timezone=timezone, second=second)

    # -- the six fields, as given (the scheduler surface returns them) --------------

    @property
    def second(self) -> str:
        return self._schedule.fields[6]

    @property
    def minute(self) -> str:
        return self._schedule.fields[0]

    @property
    def hour(self) -> str:
        return self._schedule.fields[1]

    @property
    def day_of_month(self) -> str:
        return self._schedule.fields[2]

    @property
    def month(self) -> str:
        return self._schedule.fields[3]

    @property
    def day_of_week(self) -> str:
        return self._schedule.fields[4]

    @property
    def week(self) -> str:
        return self._schedule.fields[5]

    @property
    def timezone(self) -> str:
        return self._schedule.timezone

    def fields(self) -> dict[str, str]:
        """The six fields by name, in crontab order then week; `second` first when it is
        not "0" (so a five-field expression reads, and is stored, as it always was)."""
        named = dict(zip(FIELD_NAMES, self._schedule.fields, strict=False))
        second = self._schedule.fields[6]
        return named if second == "0" else {"second": second, **named}

    # -- the Trigger interface --------------------------------------------------------

    def next_fire_time(self, after: datetime) -> datetime | None:
        return self._schedule.next_fire_time(after)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.fields(), "timezone": self.timezone}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CronTrigger:
        check_known_keys(cls.kind, data, _KEYS)
        values = {name: data[name] for name in _ARGUMENTS if name in data}
        return cls(**values, stored=True)

    def describe(self) -> str:
        """`cron[minute='0', hour='9', day_of_month='*', month='*', day_of_week='*', week='*']`."""
        return f"cron[{self._shown_fields()}]"

    # -- value behaviour ---------------------------------------------------------------

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"CronTrigger is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"CronTrigger is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[Any, tuple[str, ...]]:
        # (the seven schedule fields, then the zone)
        return (_rebuilt, (*self._schedule.fields, self.timezone))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronTrigger):
            return NotImplemented
        return (self._schedule.fields, self.timezone) == (other._schedule.fields, other.timezone)

    def __hash__(self) -> int:
        return hash((self._schedule.fields, self.timezone))

    def __repr__(self) -> str:
        return f"CronTrigger({self._shown_fields()}, timezone={self.timezone!r})"

    def _shown_fields(self) -> str:
        return ", ".join(f"{name}={value!r}" for name, value in self.fields().items())


def _rebuilt(*values: str) -> CronTrigger:
    """Unpickling: the trigger existed, so it is rebuilt as a stored one is."""
    minute, hour, day_of_month, month, day_of_week, week, second, timezone = values
    return CronTrigger(
        minute, hour, day_of_month, month, day_of_week, week, timezone, second=second, stored=True
    )
