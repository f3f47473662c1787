"""DateTrigger: fire once, at one instant (the scripts surface's `run_date`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.triggers.common import (
    DEFAULT_ZONE,
    check_after,
    check_known_keys,
    datetime_from_dict,
    load_zone,
    require_aware,
    required,
    show_in_zone,
)

_KEYS = frozenset({"kind", "run_date", "timezone"})


@dataclass(frozen=True, slots=True)
class DateTrigger:
    """Fires once at `run_date` (kept in UTC); `timezone` only decides how it is shown."""

    run_date: datetime
    timezone: str = DEFAULT_ZONE

    kind = "date"

    def __post_init__(self) -> None:
        load_zone(self.timezone)
        object.__setattr__(self, "run_date", require_aware("run_date", self.run_date))

    def next_fire_time(self, after: datetime) -> datetime | None:
        check_after(after)
        return self.run_date if self.run_date > after else None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "run_date": self.run_date.isoformat(), "timezone": self.timezone}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DateTrigger:
        check_known_keys(cls.kind, data, _KEYS)
        return cls(
            run_date=datetime_from_dict("run_date", required(data, "run_date")),
            timezone=data.get("timezone", DEFAULT_ZONE),
        )

    def describe(self) -> str:
        """`date[2024-12-31 23:59:59 UTC]`, as APScheduler 3 and the scripts seed show it."""
        return f"date[{show_in_zone(self.run_date, self.timezone)}]"
