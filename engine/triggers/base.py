"""The one interface every trigger implements.

A trigger is an immutable value: it answers "when is the next fire strictly after
`after`?" and serialises to a plain dict so every store can keep it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Trigger(Protocol):
    #: "date", "cron" or "interval"; the key `trigger_from_dict` dispatches on.
    kind: str

    @property
    def timezone(self) -> str:
        """IANA name of the zone the trigger's fields are read in ("UTC" by default)."""

    def next_fire_time(self, after: datetime) -> datetime | None:
        """Earliest fire time strictly later than `after` (aware), in UTC; None when done."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with a "kind" key; `trigger_from_dict` inverts it."""

    def describe(self) -> str:
        """Human form, e.g. `date[2024-12-31 23:59:59 UTC]` (the scripts surface shows it)."""
