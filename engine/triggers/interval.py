"""IntervalTrigger: fire every fixed stretch of real time, from a start, until an end.

Fires are `start_date + k * interval` for k = 0, 1, 2, ...: counted from the start rather
than from the last fire, so a late or missed fire never shifts the ones after it. The
interval is real elapsed time, so DST changes do not move it; `timezone` only decides how
the trigger is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import TriggerError
from engine.triggers.common import (
    DEFAULT_ZONE,
    check_after,
    check_known_keys,
    datetime_from_dict,
    load_zone,
    optional_datetime_from_dict,
    require_aware,
    required,
)

_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_KEYS = frozenset({"kind", *_UNITS, "start_date", "end_date", "timezone"})


def _amount(unit: str, value: object) -> float:
    """A finite, non-negative number of `unit`s (bool is refused: True is not 1 week)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TriggerError(unit, f"expected a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise TriggerError(unit, f"{value!r} must be a finite number >= 0")
    return value


@dataclass(frozen=True, slots=True)
class IntervalTrigger:
    """Every `weeks/days/hours/minutes/seconds` from `start_date`, never after `end_date`.

    `start_date` defaults to the creation instant; the engine passes its own clock's now
    so tests on a fake clock stay exact. `to_dict` always writes it, so a job read back
    from a store keeps its phase.
    """

    weeks: float = 0
    days: float = 0
    hours: float = 0
    minutes: float = 0
    seconds: float = 0
    start_date: datetime | None = None
    end_date: datetime | None = None
    timezone: str = DEFAULT_ZONE
    interval: timedelta = field(init=False, repr=False, compare=False)

    kind = "interval"

    def __post_init__(self) -> None:
        load_zone(self.timezone)
        amounts = {unit: _amount(unit, getattr(self, unit)) for unit in _UNITS}
        interval = timedelta(**amounts)
        if interval <= timedelta(0):
            raise TriggerError("interval", "must be longer than zero (set weeks..seconds)")
        start = (
            datetime.now(UTC)
            if self.start_date is None
            else require_aware("start_date", self.start_date)
        )
        end = None if self.end_date is None else require_aware("end_date", self.end_date)
        if end is not None and end < start:
            raise TriggerError("end_date", f"{end.isoformat()} is before start_date")
        object.__setattr__(self, "start_date", start)
        object.__setattr__(self, "end_date", end)
        object.__setattr__(self, "interval", interval)

    def next_fire_time(self, after: datetime) -> datetime | None:
        check_after(after)
        start = self.start_date
        assert start is not None  # set in __post_init__
        if after < start:
            fire = start
        else:
            # Whole intervals elapsed since the start (exact: timedelta // timedelta is int).
            fire = start + self.interval * ((after - start) // self.interval + 1)
        if self.end_date is not None and fire > self.end_date:
            return None
        return fire

    def to_dict(self) -> dict[str, Any]:
        start = self.start_date
        assert start is not None
        return {
            "kind": self.kind,
            **{unit: getattr(self, unit) for unit in _UNITS},
            "start_date": start.isoformat(),
            "end_date": None if self.end_date is None else self.end_date.isoformat(),
            "timezone": self.timezone,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntervalTrigger:
        check_known_keys(cls.kind, data, _KEYS)
        return cls(
            **{unit: data.get(unit, 0) for unit in _UNITS},
            start_date=datetime_from_dict("start_date", required(data, "start_date")),
            end_date=optional_datetime_from_dict("end_date", data.get("end_date")),
            timezone=data.get("timezone", DEFAULT_ZONE),
        )

    def describe(self) -> str:
        """`interval[0:05:00]`, the form APScheduler 3 shows."""
        return f"interval[{self.interval}]"
