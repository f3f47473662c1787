"""Checking the pub_args / pub_kwargs a job class is called with.

Arguments arrive as JSON from a client, so every built-in job checks them the same way
and refuses bad ones with a JobError naming the argument: the execution fails with that
one clear message and the service carries on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jobs.base import Argument, JobError

#: Argument name standing for "any further pub_args" / "any pub_kwargs" in metadata
ANY_ARGS = "pub_args"
ANY_KWARGS = "pub_kwargs"


def check_signature(
    job_name: str,
    arguments: Sequence[Argument],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> None:
    """Refuse extra positional args and unknown kwarg names, per the class metadata.

    A class whose metadata has an Argument named ANY_ARGS (source pub_args) or ANY_KWARGS
    (source pub_kwargs) takes any number of those.
    """
    positional = [a for a in arguments if a.source == "pub_args"]
    named = {a.name for a in arguments if a.source == "pub_kwargs"}
    if not any(a.name == ANY_ARGS for a in positional) and len(args) > len(positional):
        wanted = ", ".join(a.name for a in positional) or "none"
        raise JobError(f"{job_name} takes pub_args [{wanted}], got {len(args)} values")
    if ANY_KWARGS not in named:
        unknown = sorted(set(kwargs) - named)
        if unknown:
            takes = ", ".join(sorted(named)) or "none"
            raise JobError(
                f"{job_name} got unknown pub_kwargs {', '.join(unknown)}; it takes: {takes}"
            )


def required_text(args: Sequence[Any], index: int, name: str, job_name: str) -> str:
    """The non-empty string at pub_args[index]."""
    if len(args) <= index:
        raise JobError(f"{job_name} needs pub_args[{index}]: {name} (missing)")
    value = args[index]
    if not isinstance(value, str) or not value.strip():
        raise JobError(f"{job_name}: {name} must be a non-empty string, not {value!r}")
    return value.strip()


def whole_number(value: Any, name: str, minimum: int = 0) -> int:
    """An integer >= minimum; digit strings from form posts are accepted too."""
    if isinstance(value, bool):
        raise JobError(f"{name} must be a whole number, not {value!r}")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise JobError(f"{name} must be a whole number, not {value!r}")
    if value < minimum:
        raise JobError(f"{name} must be at least {minimum}, not {value}")
    return value


def choice(value: Any, name: str, allowed: Iterable[str]) -> str:
    """One of the allowed strings."""
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        raise JobError(f"{name} must be one of {', '.join(options)}, not {value!r}")
    return value


def subset(value: Any, name: str, allowed: Iterable[str]) -> list[str]:
    """A non-empty list of distinct allowed strings, in the order given (a lone string
    counts as a list of one)."""
    options = tuple(allowed)
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise JobError(f"{name} must be a non-empty list drawn from {', '.join(options)}")
    chosen: list[str] = []
    for item in items:
        choice(item, f"each of {name}", options)
        if item not in chosen:
            chosen.append(item)
    return chosen


def setting_seconds(extra: Mapping[str, Any], key: str, default: float) -> float:
    """A positive timeout from `Settings.extra`, falling back to the default."""
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise JobError(f"setting {key} must be a positive number of seconds, not {value!r}")
    return float(value)
