"""Building Execution records, so the loop, the workers and recovery fill them alike.

Every execution repeats its job's labels (name, kind, target, owner) because the
scheduler surface lists executions with `job_name` and `job_class_string` even after the
job is gone. Both a full `Job` and the loop's `JobSlot` carry those labels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from engine.ids import new_id
from engine.model import TERMINAL_STATUSES, Execution, Status


class JobLabels(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def owner(self) -> str | None: ...


def new_execution(
    job: JobLabels,
    kind: str,
    status: Status,
    now: datetime,
    *,
    scheduled_for: datetime | None = None,
    reason: str = "schedule",
    error: str = "",
    output: str = "",
    node: str | None = None,
) -> Execution:
    """A fresh execution of `job`; terminal statuses get completed_at=now."""
    return Execution(
        id=new_id(),
        job_id=job.id,
        status=status,
        created_at=now,
        scheduled_for=scheduled_for,
        completed_at=now if status in TERMINAL_STATUSES else None,
        output=output,
        error=error,
        owner=job.owner,
        job_name=job.name,
        job_kind=kind,
        job_target=job.target,
        reason=reason,
        node=node,
    )


def retry_of(failed: Execution, now: datetime, due: datetime, node: str | None = None) -> Execution:
    """The `scheduled` execution that retries `failed` at `due` (on `node`)."""
    return Execution(
        id=new_id(),
        job_id=failed.job_id,
        status=Status.SCHEDULED,
        created_at=now,
        scheduled_for=due,
        owner=failed.owner,
        job_name=failed.job_name,
        job_kind=failed.job_kind,
        job_target=failed.job_target,
        reason="retry",
        attempt=failed.attempt + 1,
        retry_of=failed.id,
        node=node,
    )
