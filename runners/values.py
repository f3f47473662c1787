"""Return values as the stores keep them: JSON as-is, anything else as its repr, and
never larger than the output cap (nothing a job hands back is unbounded)."""

from __future__ import annotations

import json
from typing import Any

#: JSON framing allowed on top of the output cap before a return value is dropped
RESULT_SLACK = 4096


def json_safe(value: Any, cap: int | None = None) -> Any:
    """The value after a JSON round trip (tuples become lists, keys strings), so the
    runner hands the engine exactly what a store will later give back; a value JSON
    cannot hold (objects, NaN, cycles) becomes its repr; one whose JSON is longer
    than `cap` (+ RESULT_SLACK) becomes a note saying it was dropped."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        text = json.dumps(safe_repr(value))
    if cap is not None and len(text) > cap + RESULT_SLACK:  # ASCII JSON: chars == bytes
        return dropped_note(len(text), cap)
    return json.loads(text)


def dropped_note(size: int, cap: int) -> str:
    return f"<return value dropped: {size} bytes of JSON, over the {cap}-byte output cap>"


def safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not fail the execution
        return f"<{type(value).__name__} object; repr() failed: {exc}>"
