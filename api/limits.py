"""The bounds every request input is held to, in one place (README "Limits").

A value outside them is refused at the request with a 4xx naming the field, in the
surface's envelope, instead of failing later in a store, a timer or a child process:
- integers fit a signed 64-bit integer (SQLite INTEGER, BSON int64);
- seconds (`timeout`, `misfire_grace_time`, `retry_delay`) are at most a year, which
  every timer and datetime sum can take;
- dates lie between year 1 and 9999 in every zone they may be shown in;
- JSON values in `pub_args` / `pub_kwargs` nest at most MAX_DEPTH deep;
- text holds no NUL byte (no argv, path, environment or BSON key can carry one) and no
  unpaired surrogate (no UTF-8 encoder can write one).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from engine.errors import InvalidField

MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
#: the longest timeout, misfire grace or retry delay, in seconds (365 days)
MAX_SECONDS = 365 * 24 * 3600
#: the furthest `offset` into the execution history a page may start at
MAX_OFFSET = 1_000_000_000
#: how deep lists and objects may nest inside pub_args and pub_kwargs
MAX_DEPTH = 32
#: the latest run_date: a day short of the end of year 9999, so the date still has a
#: value when shown in any zone (UTC-12 .. UTC+14)
MAX_RUN_DATE = datetime(9999, 12, 30, tzinfo=UTC)

#: NUL, and UTF-16 surrogates (which in a Python string can only be unpaired)
_UNFIT = re.compile("[\x00\ud800-\udfff]")


def check_text(name: str, text: str) -> str:
    """`text`, or InvalidField when it holds a character no process or encoder takes."""
    found = _UNFIT.search(text)
    if found is not None:
        what = "a NUL byte" if found.group() == "\x00" else "an unpaired UTF-16 surrogate"
        raise InvalidField(name, f"{name} must not contain {what} (at character {found.start()})")
    return text


def check_integer(name: str, value: int) -> int:
    if not MIN_INTEGER <= value <= MAX_INTEGER:
        raise InvalidField(
            name, f"{name} is out of range: integers must lie in {MIN_INTEGER}..{MAX_INTEGER}"
        )
    return value


def check_json(name: str, value: Any, depth: int = 0) -> Any:
    """A JSON value from a body, walked whole: every string and key by `check_text`,
    every integer by `check_integer`, every number finite, nesting at most MAX_DEPTH.
    Errors name the place (`pub_kwargs.options[2]`)."""
    if isinstance(value, str):
        return check_text(name, value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return check_integer(name, value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidField(name, f"{name} must be a finite number")
        return value
    if depth >= MAX_DEPTH:
        raise InvalidField(name, f"{name} nests lists and objects more than {MAX_DEPTH} deep")
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json(f"{name}[{index}]", item, depth + 1)
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            check_text(f"{name} key {key!r}", key)
            check_json(f"{name}.{key}", item, depth + 1)
        return value
    raise InvalidField(name, f"{name} is not a JSON value")
