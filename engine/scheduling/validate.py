"""Checks the engine makes on every job it is asked to schedule.

The API validates requests for its own error messages; these are the engine's last
line, so a job with settings the loop cannot honour never reaches the store.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from engine.errors import InvalidInput
from engine.interfaces import RUN_COUNTERS
from engine.model import OVERLAP_POLICIES, Job, as_utc
from engine.scheduling.policy import check_backoff

JOB_FIELDS = frozenset(f.name for f in fields(Job))
_NUMBER_TYPES = frozenset({int, float})


def _is_number(value: object) -> bool:
    return type(value) in _NUMBER_TYPES or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )


def _non_negative(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not (_is_number(value) and 0 <= value < math.inf):  # type: ignore[operator]
        raise InvalidInput(f"{name} must be a number >= 0, not {value!r}")


def _whole(name: str, value: int, minimum: int) -> None:
    if type(value) is not int or value < minimum:
        raise InvalidInput(f"{name} must be a whole number >= {minimum}, not {value!r}")


def check_job(job: Job) -> Job:
    """Raise InvalidInput for settings the engine cannot honour (adds are a hot path,
    so the common case costs a few type checks)."""
    if type(job.id) is not str or not job.id:
        raise InvalidInput("a job needs a non-empty string id")
    if not callable(getattr(job.trigger, "next_fire_time", None)):  # cheaper than isinstance
        raise InvalidInput(f"job {job.id}: trigger {job.trigger!r} is not a trigger")
    _whole("max_instances", job.max_instances, 1)
    _whole("retries", job.retries, 0)
    _non_negative("retry_delay", job.retry_delay)
    _non_negative("misfire_grace_time", job.misfire_grace_time, allow_none=True)
    if job.timeout is not None:
        _non_negative("timeout", job.timeout)
        if job.timeout == 0:
            raise InvalidInput("timeout must be more than 0 seconds (or None for no limit)")
    if job.retry_backoff != "fixed":
        check_backoff(job.retry_backoff)
    if job.history_limit is not None:
        _whole("history_limit", job.history_limit, 1)
    if job.overlap != "skip" and job.overlap not in OVERLAP_POLICIES:
        raise InvalidInput(
            f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, not {job.overlap!r}"
        )
    if job.on_success or job.on_failure:
        for name in ("on_success", "on_failure"):
            ids = getattr(job, name)
            if not isinstance(ids, tuple | list) or not all(type(i) is str and i for i in ids):
                raise InvalidInput(f"{name} must be a list of job ids")
    return job


def check_changes(job_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Field names must be Job fields; the id cannot change; datetimes become UTC."""
    unknown = sorted(set(changes) - JOB_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown job field(s): {', '.join(unknown)}")
    if "id" in changes and changes["id"] != job_id:
        raise InvalidInput("a job's id cannot be changed; add a new job instead")
    counters = sorted(set(changes) & set(RUN_COUNTERS))
    if counters:
        # the store keeps these from the runs themselves and ignores them in update_job
        raise InvalidInput(f"{', '.join(counters)} cannot be changed: it is kept from the runs")
    cleaned = dict(changes)
    for name in ("next_run_time", "created_at", "updated_at"):
        value = cleaned.get(name)
        if value is not None:
            cleaned[name] = as_utc(value)
    return cleaned
