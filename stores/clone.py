"""Copying model objects deep enough that a caller's later mutations never reach a
store's own copy, cheaply: the memory store clones on every write and read, and the
SQL stores hand out copies of the jobs they keep decoded (stores/sql.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from engine.model import NO_ENV, JobKind, Status, Surface, as_utc

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
    """A function that clones one `model` instance, planned once per class.

    One `attrgetter` call reads every field; only the fields that may hold something
    mutable or non-UTC (their positions are worked out here, once) are looked at, and
    copied through `_copy_value` when they are neither None nor a UTC datetime; the
    values go to the constructor positionally. The memory store clones on every write
    and read (four times per fire), so the per-field work is kept to those few fields.
    """
    cloner = _CLONERS.get(model)
    if cloner is None:
        names = [f.name for f in fields(model)]
        read_all = attrgetter(*names)
        checked = tuple(
            index
            for index, f in enumerate(fields(model))
            if str(f.type) not in _SCALAR_ANNOTATIONS and f.name not in _SHARED_FIELDS
        )

        def clone_one(obj: Any) -> Any:
            values = list(read_all(obj))
            for index in checked:
                value = values[index]
                if value is not None and (
                    value.__class__ is not datetime or value.tzinfo is not UTC
                ):
                    values[index] = _copy_value(value)
            return model(*values)

        cloner = _CLONERS[model] = clone_one
    return cloner


def _copy_value(value: Any) -> Any:
    kind = type(value)
    shared = _SHARED_TYPES
    if kind in shared:
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo is UTC else as_utc(value)
    if value is NO_ENV:  # read-only and shared by every job without variables
        return value
    if not value and (kind is list or kind is dict):
        return kind()  # the usual kwargs: none
    if kind is tuple:  # a job's chain targets: job ids, immutable all through
        for item in value:
            if type(item) not in shared:
                return copy.deepcopy(value)
        return value
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
