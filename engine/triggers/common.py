"""Checks every trigger shares: zones, aware datetimes, and reading them back from dicts.

Kept in one place so the three triggers word their errors the same way and a zone is
resolved (and validated) by one function.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import TriggerError

#: The zone name every trigger uses unless told otherwise.
DEFAULT_ZONE = "UTC"


def load_zone(name: object) -> ZoneInfo:
    """The ZoneInfo for an IANA name; TriggerError (field "timezone") when it is unknown."""
    if not isinstance(name, str) or not name:
        raise TriggerError("timezone", f"expected an IANA zone name, got {name!r}")
    return _cached_zone(name)


@lru_cache(maxsize=512)
def _cached_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TriggerError("timezone", f"unknown time zone {name!r}") from None


def require_aware(field: str, value: object) -> datetime:
    """`value` as an aware UTC datetime; naive or non-datetime input is refused.

    Naive input is refused rather than guessed at: the API layer owns the configured
    default zone and converts before a trigger is built.
    """
    if not isinstance(value, datetime):
        raise TriggerError(field, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise TriggerError(field, f"{value.isoformat()} has no time zone (naive datetime)")
    return value.astimezone(UTC)


def datetime_from_dict(field: str, value: Any) -> datetime:
    """Read back a datetime that `to_dict` wrote as ISO 8601 (a datetime is accepted too)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise TriggerError(field, f"{value!r} is not an ISO 8601 datetime") from None
    return require_aware(field, value)


def optional_datetime_from_dict(field: str, value: Any) -> datetime | None:
    return None if value is None else datetime_from_dict(field, value)


def check_after(after: datetime) -> None:
    """`next_fire_time` needs an aware instant: a naive one would silently mean local time."""
    if after.tzinfo is None:
        raise TriggerError("after", f"{after.isoformat()} has no time zone (naive datetime)")


def show_in_zone(when: datetime, zone: str) -> str:
    """`2024-12-31 23:59:59 UTC`: the instant on the zone's wall clock with its abbreviation."""
    local = when.astimezone(load_zone(zone))
    # isoformat, not strftime("%Y-%m-%d %H:%M:%S %Z"): the same text at a fifth of the
    # cost, and every listed job shows its trigger this way
    return f"{local.isoformat(' ', 'seconds')[:19]} {local.tzname() or ''}"


def check_known_keys(kind: str, data: dict[str, Any], allowed: frozenset[str]) -> None:
    """Refuse keys a trigger does not have, so a misspelt field is not silently ignored.

    `allowed` includes "kind"; the subset test first keeps the usual case cheap.
    """
    if allowed.issuperset(data):
        return
    unknown = sorted(set(data) - allowed)
    raise TriggerError(kind, f"unknown keys {unknown} (allowed: {sorted(allowed)})")


def required(data: dict[str, Any], key: str) -> Any:
    """`data[key]`, or TriggerError naming the key when the dict lacks it."""
    if key not in data:
        raise TriggerError(key, "missing (this field is required)")
    return data[key]
