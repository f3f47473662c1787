"""How model records are written as text: one encoding shared by every real backend.

Datetimes become fixed-width UTC ISO text (`2026-01-01T00:00:00.000000Z`, 27 chars), so
string order is time order in SQL and MongoDB alike, `<` works in a WHERE clause, and
microseconds survive (BSON dates keep only milliseconds). Everything else in a record is
JSON: values JSON cannot hold (a job's odd return value) are kept as their `str()`.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from engine.model import as_utc

T = TypeVar("T")


#: recent times and their text; cleared whole when it reaches TIME_TEXT_CACHE entries
_time_texts: dict[datetime, str] = {}
TIME_TEXT_CACHE = 4096


def time_text(value: datetime | None) -> str | None:
    """Fixed-width, sortable UTC text for an aware datetime (naive is taken as UTC).

    A fire writes its execution three times (claimed, running, terminal) and each write
    re-encodes the same created/scheduled/started times: a small cache answers those
    repeats (0.1 vs 2-3 us). Equal datetimes always have equal text (an aware and a
    naive one are never equal), so a hit is always right.
    """
    if value is None:
        return None
    text = _time_texts.get(value)
    if text is None:
        if len(_time_texts) >= TIME_TEXT_CACHE:
            _time_texts.clear()
        text = _time_texts[value] = _format_time(value)
    return text


#: isoformat's digits, microseconds always, "Z" for its offset
_TIME_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def _format_time(value: datetime) -> str:
    """The fields through one %-format: an aware datetime's isoformat with timespec
    formats its offset too, and that was most of a job insert's 4 misses (~12k
    instructions each, callgrind, against ~4k)."""
    if value.tzinfo is not UTC:  # the engine's own times are already in UTC
        value = as_utc(value)
    return _TIME_FORMAT % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def text_time(value: str | None) -> datetime | None:
    """Inverse of `time_text`."""
    if value is None:
        return None
    return datetime.fromisoformat(value)  # the Z suffix makes it aware, in UTC


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


#: built once: json.dumps with options builds a new encoder on every call (~3 us), and
#: every fire encodes its execution two or three times
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"))


def dumps(record: dict[str, Any]) -> str:
    """JSON text of a record, datetimes as `time_text`."""
    return _ENCODER.encode(record)


def loads(text: str | bytes) -> Any:
    """A stored JSON document back as Python values.

    orjson parses a job's document in ~5 us against json's ~13, and every listed or
    loaded job is one parse (100,000 at start). It refuses what json.dumps may have
    written and it does not read (NaN, integers past 64 bits): those take the json way.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def plain(record: dict[str, Any]) -> dict[str, Any]:
    """The record as JSON would give it back: what a document store can hold as-is."""
    result: dict[str, Any] = json.loads(dumps(record))
    return result


_TIME_FIELDS: dict[type, tuple[str, ...]] = {}


def time_fields(model: type) -> tuple[str, ...]:
    """Names of a model dataclass's datetime fields (found from the annotations)."""
    names = _TIME_FIELDS.get(model)
    if names is None:
        names = _TIME_FIELDS[model] = tuple(
            f.name for f in fields(model) if "datetime" in str(f.type)
        )
    return names


def revive(model: type[T], record: dict[str, Any]) -> T:
    """Build a model object from a decoded record, turning time text back to datetimes."""
    result: T = model.from_record(revive_times(model, record))  # type: ignore[attr-defined]
    return result


def revive_times(model: type, record: dict[str, Any]) -> dict[str, Any]:
    """`record` (changed in place) with the time text of `model`'s datetime fields
    turned back to datetimes: the record `model.from_record` takes."""
    for name in time_fields(model):
        value = record.get(name)
        if isinstance(value, str):
            record[name] = text_time(value)
    return record
