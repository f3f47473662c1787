"""Copying model objects deep enough that a caller's later mutations never reach a
store's own copy, cheaply: the memory store clones on every write and read, and the
SQL stores hand out copies of the jobs they keep decoded (stores/sql.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from engine.model import JobKind, Status, Surface, as_utc

T = TypeVar("T")


#: immutable values a copy may share instead of copying (deepcopy of a Job took ~190 us,
#: most of a fire's or an add's cost; sharing these makes a clone ~20x cheaper)
_SHARED_TYPES = frozenset({str, int, float, bool, type(None), bytes, Status, JobKind, Surface})
#: fields holding immutable values of other types (triggers are immutable by contract)
_SHARED_FIELDS = frozenset({"trigger"})
#: annotations of fields whose values are always immutable scalars
_SCALAR_ANNOTATIONS = frozenset(
    {"str", "int", "float", "bool", "str | None", "int | None", "float | None"}
    | {"Status", "JobKind", "Surface"}
)


_CLONERS: dict[type, Callable[[Any], Any]] = {}


def _cloner(model: type) -> Callable[[Any], Any]:
    """A function that clones one `model` instance, compiled once per class.

    It reads every field by name and passes the values to the constructor positionally;
    only the fields that may hold something mutable or non-UTC are checked, inline, and
    copied through `_copy_value` when they are neither None nor a UTC datetime. Written
    out as source (as `dataclasses` writes `__init__`) because the generic loop over an
    attrgetter tuple was most of a clone's cost, and the memory store clones on every
    write and read (four times per fire).
    """
    cloner = _CLONERS.get(model)
    if cloner is None:
        body: list[str] = []
        values: list[str] = []
        for f in fields(model):
            if str(f.type) in _SCALAR_ANNOTATIONS or f.name in _SHARED_FIELDS:
                values.append(f"obj.{f.name}")
                continue
            body += [
                f"    {f.name} = obj.{f.name}",
                f"    if {f.name} is not None and ({f.name}.__class__ is not datetime or {f.name}.tzinfo is not UTC):",
                f"        {f.name} = copy_value({f.name})",
            ]
            values.append(f.name)
        source = "\n".join(["def clone(obj):", *body, f"    return model({', '.join(values)})"])
        scope: dict[str, Any] = {
            "model": model,
            "datetime": datetime,
            "UTC": UTC,
            "copy_value": _copy_value,
        }
        exec(source, scope)
        cloner = _CLONERS[model] = scope["clone"]
    return cloner


def _copy_value(value: Any) -> Any:
    kind = type(value)
    shared = _SHARED_TYPES
    if kind in shared:
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo is UTC else as_utc(value)
    if not value and (kind is list or kind is dict):
        return kind()  # the usual kwargs: none
    # plain loops, not all(<generator>): a generator per copied field was a third of an add
    if kind is list:
        for item in value:
            if type(item) not in shared:
                return copy.deepcopy(value)
        return list(value)  # the usual args: a flat list of scalars
    if kind is dict:
        for key, item in value.items():
            if type(key) not in shared or type(item) not in shared:
                return copy.deepcopy(value)
        return dict(value)  # the usual kwargs
    return copy.deepcopy(value)


def clone(obj: T) -> T:
    """Copy deep enough that the caller's later mutations never reach the store, with
    every datetime field in UTC (what the real backends hand back).

    Scalar fields and triggers are shared (immutable), datetimes normalised, anything
    else (args, kwargs, return values, nested dicts) copied as deep as it goes.
    """
    cloned: T = _cloner(type(obj))(obj)
    return cloned
