"""Return values as the stores keep them: JSON as-is, anything else as its repr."""

from __future__ import annotations

import json
from typing import Any


def json_safe(value: Any) -> Any:
    """The value after a JSON round trip (tuples become lists, keys strings), so the
    runner hands the engine exactly what a store will later give back; a value JSON
    cannot hold (objects, NaN, cycles) becomes its repr."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return safe_repr(value)


def safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not fail the execution
        return f"<{type(value).__name__} object; repr() failed: {exc}>"
