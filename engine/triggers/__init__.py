"""Triggers: when a job fires. See base.py for the interface.

`trigger_from_dict` is how a stored job gets its trigger back (`Job.from_record`). A
BoundedTrigger (window and jitter, bounded.py) is stored as its inner trigger's dict
plus the `BOUND_KEYS`, so its `kind` stays the inner one's.
"""

from __future__ import annotations

from typing import Any

from engine.errors import TriggerError
from engine.interfaces import Trigger
from engine.triggers.bounded import BOUND_KEYS, BoundedTrigger, bounded_from_dict
from engine.triggers.cron import CronTrigger
from engine.triggers.date import DateTrigger
from engine.triggers.interval import IntervalTrigger

__all__ = [
    "BoundedTrigger",
    "CronTrigger",
    "DateTrigger",
    "IntervalTrigger",
    "Trigger",
    "trigger_from_dict",
]

_BY_KIND: dict[str, Any] = {
    DateTrigger.kind: DateTrigger,
    CronTrigger.kind: CronTrigger,
    IntervalTrigger.kind: IntervalTrigger,
}


def trigger_from_dict(d: dict[str, Any]) -> Trigger:
    """Rebuild the trigger `to_dict` wrote; TriggerError (field "kind") for an unknown kind."""
    if not isinstance(d, dict):
        raise TriggerError("trigger", f"expected a dict with a 'kind', got {type(d).__name__}")
    try:
        key = tuple(d.items())
        known = _REBUILT.get(key)
    except TypeError:  # an unhashable value: rebuilt (and refused) the long way
        key, known = None, None
    if known is not None:
        return known
    cls = _BY_KIND.get(d.get("kind"))  # type: ignore[arg-type]
    if cls is None:
        raise TriggerError("kind", f"{d.get('kind')!r} is not one of {sorted(_BY_KIND)}")
    if BOUND_KEYS[0] in d or BOUND_KEYS[2] in d:
        inner = {k: v for k, v in d.items() if k not in BOUND_KEYS}
        trigger: Trigger = bounded_from_dict(cls.from_dict(inner), d)
    else:
        trigger = cls.from_dict(d)
    if key is not None:
        if len(_REBUILT) >= REBUILT_LIMIT:
            _REBUILT.clear()
        _REBUILT[key] = trigger
    return trigger


#: triggers rebuilt from stored dicts, by the dict's items: triggers are immutable, so
#: one object serves every read of the same stored trigger (a list of 2,000 jobs read
#: again rebuilds none; a date trigger was a quarter of decoding a job). Bounded.
REBUILT_LIMIT = 20_000
_REBUILT: dict[tuple[tuple[str, Any], ...], Trigger] = {}
