"""BoundedTrigger: any trigger, kept inside a window and fired with jitter.

It wraps a date, cron or interval trigger (the *inner* one) and changes two things:

- **Window.** Only the inner trigger's fire times from `start_date` to `end_date`
  (both inclusive, either optional) count; they are the *occurrences*.
- **Jitter.** Each occurrence fires `delay` later, a pseudo-random delay in
  `[0, jitter)` seconds that never reaches the next occurrence nor passes `end_date`:
  `delay < min(jitter, next occurrence - occurrence, end_date - occurrence)`. So fire
  times stay in the occurrences' order, a fire never overtakes the next occurrence, and
  none falls after the window.

The delay of an occurrence is a function of the trigger's `seed` and the occurrence
(a keyed BLAKE2b hash of its timestamp): random-looking across occurrences and jobs,
yet the same every time it is asked for, as the engine needs (it asks for the fire
after a due fire again when it plans misfires, and the next-runs listing must show
the times that will really fire). Each new trigger draws its own seed, so jobs on one
schedule with jitter spread out rather than firing together.

`next_run` yields both the occurrence and its fire time; `next_fire_time` (the
Trigger interface the engine uses) is the fire time. `kind` and `timezone` are the
inner trigger's, so the engine treats a bounded date trigger as the one-off it is.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from engine.errors import TriggerError
from engine.triggers.common import optional_datetime_from_dict, require_aware, show_in_zone

if TYPE_CHECKING:
    from engine.interfaces import Trigger

#: the smallest step between datetimes
_TICK = timedelta(microseconds=1)
_MICROS = 1_000_000
#: the keys a bounded trigger adds to its inner trigger's dict
BOUND_KEYS = ("window_start", "window_end", "jitter_seconds", "jitter_seed")
#: linear steps over earlier occurrences before `_latest_at_or_before` bisects instead
_SCAN_STEPS = 4


def new_seed() -> int:
    """A fresh seed for a trigger's jitter (63 bits, so every store keeps it exactly)."""
    return secrets.randbits(63)


class BoundedTrigger:
    """Immutable, like every trigger (equal values are shared by the engine)."""

    __slots__ = ("end_date", "inner", "jitter", "kind", "seed", "start_date")
    inner: Trigger
    start_date: datetime | None
    end_date: datetime | None
    #: seconds; 0 = none
    jitter: float
    seed: int
    #: the inner trigger's, so the engine treats a bounded date trigger as a one-off
    kind: str

    def __init__(
        self,
        inner: Trigger,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        jitter: float = 0.0,
        seed: int | None = None,
        *,
        stored: bool = False,
    ) -> None:
        """`seed` None draws a new one. `stored=True` (a trigger rebuilt from a store)
        skips the check that some fire time falls in the window."""
        if isinstance(inner, BoundedTrigger):
            raise TriggerError("trigger", "a bounded trigger cannot wrap another one")
        start = None if start_date is None else require_aware("start_date", start_date)
        end = None if end_date is None else require_aware("end_date", end_date)
        if start is not None and end is not None and end < start:
            raise TriggerError(
                "end_date", f"{end.isoformat()} is before start_date {start.isoformat()}"
            )
        if isinstance(jitter, bool) or not isinstance(jitter, int | float):
            raise TriggerError("jitter_seconds", f"expected a number of seconds, got {jitter!r}")
        if not math.isfinite(jitter) or jitter < 0:
            raise TriggerError("jitter_seconds", f"{jitter!r} must be a finite number >= 0")
        seed = new_seed() if seed is None else seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise TriggerError("jitter_seed", f"expected an integer 0 .. 2**63-1, got {seed!r}")
        for name, value in (
            ("inner", inner),
            ("start_date", start),
            ("end_date", end),
            ("jitter", float(jitter)),
            ("seed", seed),
            ("kind", inner.kind),
        ):
            object.__setattr__(self, name, value)
        if not stored and self._occurrence_after(None) is None:
            after_start = inner.next_fire_time((start or _BEGINNING) - _TICK)
            raise TriggerError(
                "start_date" if after_start is None else "end_date",
                f"no fire time of {inner.describe()} falls in the window "
                f"{_shown(start)} .. {_shown(end)}",
            )

    # -- value behaviour ------------------------------------------------------------------

    def _values(self) -> tuple[Any, ...]:
        return (self.inner, self.start_date, self.end_date, self.jitter, self.seed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoundedTrigger):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"BoundedTrigger is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"BoundedTrigger is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_rebuilt, self._values())

    def __repr__(self) -> str:
        return (
            f"BoundedTrigger({self.inner!r}, start_date={self.start_date!r}, "
            f"end_date={self.end_date!r}, jitter={self.jitter!r}, seed={self.seed!r})"
        )

    # -- the Trigger interface ----------------------------------------------------------

    @property
    def timezone(self) -> str:
        return self.inner.timezone

    def next_fire_time(self, after: datetime) -> datetime | None:
        run = self.next_run(after)
        return None if run is None else run[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.inner.to_dict(),
            "window_start": None if self.start_date is None else self.start_date.isoformat(),
            "window_end": None if self.end_date is None else self.end_date.isoformat(),
            "jitter_seconds": self.jitter,
            "jitter_seed": self.seed,
        }

    def describe(self) -> str:
        """The inner description with the bounds inside its brackets:
        `cron[minute='0', ..., start_date='2026-01-01 00:00:00 CET', jitter=30]`."""
        extra = []
        if self.start_date is not None:
            extra.append(f"start_date='{show_in_zone(self.start_date, self.timezone)}'")
        if self.end_date is not None:
            extra.append(f"end_date='{show_in_zone(self.end_date, self.timezone)}'")
        if self.jitter:
            extra.append(f"jitter={self.jitter:g}")
        inner = self.inner.describe()
        if not extra:
            return inner
        if inner.endswith("]"):
            return f"{inner[:-1]}, {', '.join(extra)}]"
        return f"{inner} [{', '.join(extra)}]"

    # -- occurrences and their fire times ----------------------------------------------

    def next_run(self, after: datetime) -> tuple[datetime, datetime] | None:
        """(occurrence, fire time) of the earliest fire strictly after `after`.

        Fire times increase with their occurrences, so the answer is the fire of the
        latest occurrence at or before `after` when that fire is still ahead, else the
        fire of the first occurrence after `after`."""
        upcoming = self._occurrence_after(after)
        if not self.jitter:
            return None if upcoming is None else (upcoming, upcoming)
        earlier = self._latest_at_or_before(after)
        if earlier is not None:
            fire = earlier + self._delay(earlier, upcoming)
            if fire > after:
                return earlier, fire
        if upcoming is None:
            return None
        return upcoming, upcoming + self._delay(upcoming, self._occurrence_after(upcoming))

    def delay_bound(self, occurrence: datetime) -> timedelta:
        """The delay an occurrence's fire stays below (0 when it cannot be delayed)."""
        return self._bound(occurrence, self._occurrence_after(occurrence))

    def _occurrence_after(self, after: datetime | None) -> datetime | None:
        """The inner trigger's first fire strictly after `after` inside the window
        (`None`: from the window's start, or from the beginning)."""
        start = self.start_date
        if after is None or (start is not None and after < start):
            after = (start or _BEGINNING) - _TICK
        occurrence = self.inner.next_fire_time(after)
        if occurrence is None or (self.end_date is not None and occurrence > self.end_date):
            return None
        return occurrence

    def _latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The latest occurrence at or before `moment` whose fire could still lie after
        it (so within `jitter` seconds before it); None when there is none."""
        low = moment - timedelta(seconds=self.jitter)
        found = self._occurrence_after(low)
        for _ in range(_SCAN_STEPS):
            if found is None or found > moment:
                return None
            following = self._occurrence_after(found)
            if following is None or following > moment:
                return found
            found = following
        # many occurrences within the jitter: bisect for the last start whose next
        # occurrence is still at or before `moment` (to the microsecond)
        assert found is not None
        low, high = found, moment
        while high - low > _TICK:
            middle = low + (high - low) / 2
            candidate = self._occurrence_after(middle)
            if candidate is not None and candidate <= moment:
                low = candidate
            else:
                high = middle
        # `high` itself may be an occurrence (the inner trigger answers strictly after)
        last = self._occurrence_after(low)
        return last if last is not None and last <= moment else low

    def _delay(self, occurrence: datetime, following: datetime | None) -> timedelta:
        bound = self._bound(occurrence, following)
        micros = bound // _TICK
        if micros <= 0:
            return timedelta(0)
        instant = (occurrence - _EPOCH) // _TICK
        digest = hashlib.blake2b(
            instant.to_bytes(9, "big", signed=True),
            digest_size=8,
            key=self.seed.to_bytes(8, "big"),
        ).digest()
        fraction = int.from_bytes(digest, "big") / 2**64  # [0, 1)
        return timedelta(microseconds=min(int(fraction * micros), micros - 1))

    def _bound(self, occurrence: datetime, following: datetime | None) -> timedelta:
        bound = timedelta(seconds=self.jitter)
        if following is not None:
            bound = min(bound, following - occurrence)
        if self.end_date is not None:
            bound = min(bound, self.end_date - occurrence)
        return bound


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: where "from the beginning" starts (a day in, so stepping back a tick stays valid)
_BEGINNING = datetime(1, 1, 2, tzinfo=UTC)


def _rebuilt(*values: Any) -> BoundedTrigger:
    """Unpickling and deep copies: the trigger existed, so it is rebuilt as stored."""
    return BoundedTrigger(*values, stored=True)


def _shown(when: datetime | None) -> str:
    return "(open)" if when is None else when.isoformat()


def bounded_from_dict(inner: Trigger, data: dict[str, Any]) -> Trigger:
    """`inner` with the bounds a BoundedTrigger's dict adds (BOUND_KEYS); `inner` itself
    when they bound nothing."""
    start = optional_datetime_from_dict("window_start", data.get("window_start"))
    end = optional_datetime_from_dict("window_end", data.get("window_end"))
    jitter = data.get("jitter_seconds") or 0.0
    if start is None and end is None and not jitter:
        return inner
    return BoundedTrigger(inner, start, end, jitter, data.get("jitter_seed") or 0, stored=True)


def next_run(trigger: Trigger, after: datetime) -> tuple[datetime, datetime] | None:
    """(occurrence, fire time) of any trigger's first fire strictly after `after`: the
    two differ only for a BoundedTrigger with jitter."""
    if isinstance(trigger, BoundedTrigger):
        return trigger.next_run(after)
    fire = trigger.next_fire_time(after)
    return None if fire is None else (fire, fire)
