"""The scheduling model: jobs, executions and their statuses.

Dataclasses with slots, since the engine keeps one Job per scheduled job in memory and
memory per job is a measured target. Datetimes are aware and in UTC everywhere.
`to_record` / `from_record` give the plain-dict form every store persists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType
from typing import Any, TypeVar

from engine.interfaces import Trigger
from engine.triggers import trigger_from_dict

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: the one `env` of every job without variables: read-only, so all of them share it
#: (an empty dict per job, twice over with the store's copy, was 128 B of each job)
NO_ENV: Mapping[str, str] = MappingProxyType({})


class JobKind(StrEnum):
    """How a job runs; the runner is chosen from this."""

    BASH = "bash"  # executable or bash script, child process, argv list
    PYTHON = "python"  # python script, child interpreter, main(*args)
    CLASS = "class"  # built-in or user job class, in a pool thread


class Status(StrEnum):
    SCHEDULED = "scheduled"  # recorded for a future retry
    QUEUED = "queued"  # fired and written, waiting for a worker
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    MISSED = "missed"  # too late per misfire_grace_time; never ran
    SKIPPED = "skipped"  # max_instances reached; never ran
    ABANDONED = "abandoned"  # was running when the service died


TERMINAL_STATUSES = frozenset(
    {
        Status.COMPLETED,
        Status.FAILED,
        Status.TIMEOUT,
        Status.CANCELLED,
        Status.MISSED,
        Status.SKIPPED,
        Status.ABANDONED,
    }
)
ACTIVE_STATUSES = frozenset({Status.SCHEDULED, Status.QUEUED, Status.RUNNING})


#: `Job.overlap`: what a fire does while max_instances executions of its job are active
#: skip: record it skipped; queue: keep it (one at most) and run it when one ends;
#: replace: cancel the active ones and run it; allow: run up to max_instances at once
OVERLAP_POLICIES = ("skip", "queue", "replace", "allow")


class Surface(StrEnum):
    """Which HTTP surface created the job (both can see and manage it)."""

    SCRIPTS = "scripts"
    SCHEDULER = "scheduler"


@dataclass(slots=True)
class Job:
    id: str
    name: str
    kind: JobKind
    #: script path for BASH/PYTHON, dotted class string for CLASS
    target: str
    trigger: Trigger
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    owner: str | None = None  # user id on the scheduler surface
    surface: Surface = Surface.SCHEDULER
    enabled: bool = True
    paused: bool = False
    max_instances: int = 1
    #: seconds a fire may run late; None runs it however late
    misfire_grace_time: float | None = 60.0
    coalesce: bool = True
    timeout: float | None = None  # seconds; None = no limit
    retries: int = 0
    retry_delay: float = 0.0  # seconds before the first retry
    retry_backoff: str = "fixed"  # "fixed" or "exponential" (delay * 2**n)
    #: keep this job's newest N executions (api/retention.py); None keeps them all
    history_limit: int | None = None
    #: what a fire does while max_instances executions are active (OVERLAP_POLICIES)
    overlap: str = "skip"
    #: job ids to run when a run of this job completes / ends failed or timed out; tuples,
    #: so the empty ones most jobs have are one shared () rather than a list per job
    on_success: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    #: {"on": [statuses], "webhook": url, "email": address, "secret": str}; None: no notices
    notify: dict[str, Any] | None = None
    next_run_time: datetime | None = None
    last_run_time: datetime | None = None
    created_at: datetime = EPOCH
    updated_at: datetime = EPOCH
    total_executions: int = 0
    #: the job's own variables for its child processes, by name; the values are the
    #: service's encrypted tokens (the engine never reads them, runners decrypt them)
    env: Mapping[str, str] = field(default_factory=lambda: NO_ENV)

    @property
    def timezone(self) -> str:
        return self.trigger.timezone

    @property
    def active(self) -> bool:
        """True when the job should fire (enabled and not paused)."""
        return self.enabled and not self.paused

    def to_record(self) -> dict[str, Any]:
        record = {name: getattr(self, name) for name in field_names(type(self))}
        record["trigger"] = self.trigger.to_dict()
        record["kind"] = str(self.kind)
        record["surface"] = str(self.surface)
        record["on_success"] = list(self.on_success)
        record["on_failure"] = list(self.on_failure)
        record["env"] = dict(self.env)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        # stores rebuild every job at start (100,000 in the store benchmark) and on each
        # list, so this stays lean: one pass over the fields, lookups over Enum calls
        values = {name: record[name] for name in field_names(cls) if name in record}
        values["trigger"] = trigger_from_dict(record["trigger"])
        kind = record["kind"]
        values["kind"] = _KINDS.get(kind) or JobKind(kind)
        surface = record.get("surface", Surface.SCHEDULER)
        values["surface"] = _SURFACES.get(surface) or Surface(surface)
        for name in _JOB_CHAINS:
            if name in values:
                values[name] = tuple(values[name])  # tuple([]) is the shared ()
        if "env" in values:
            values["env"] = dict(values["env"]) if values["env"] else NO_ENV
        for name in _JOB_TIMES:
            value = values.get(name)
            if value is not None and value.tzinfo is not UTC:
                values[name] = as_utc(value)
        return cls(**values)


@dataclass(slots=True)
class Execution:
    id: str
    job_id: str
    status: Status
    created_at: datetime
    #: the fire time this execution is for; None for a manual run
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    output: str = ""
    error: str = ""
    return_value: Any = None
    exit_code: int | None = None
    owner: str | None = None
    job_name: str = ""
    job_kind: str = ""
    job_target: str = ""
    reason: str = "schedule"  # "schedule", "manual", "retry", "chain" or "backfill"
    attempt: int = 1
    retry_of: str | None = None
    #: the node that claimed (and runs) it; None from a store written before nodes
    node: str | None = None
    #: what the job's overlap policy decided for this execution ("" when nothing else
    #: of the job was active): a word (skipped, queued, replaced, allowed), a colon and why
    overlap_decision: str = ""
    #: the execution whose end started this one through on_success / on_failure
    triggered_by: str | None = None
    #: follow-ups of this execution's end: chained runs started or not ({"job_id",
    #: "execution_id" or "error"})
    chained: list[dict[str, Any]] = field(default_factory=list)
    #: every notification attempt: {"at", "target", "attempt", "outcome"}
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_record(self) -> dict[str, Any]:
        record = {name: getattr(self, name) for name in field_names(type(self))}
        record["status"] = str(self.status)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Execution:
        values = {name: record[name] for name in field_names(cls) if name in record}
        values["status"] = Status(record["status"])
        for name in ("created_at", "scheduled_for", "started_at", "completed_at"):
            if values.get(name) is not None:
                values[name] = as_utc(values[name])
        return cls(**values)


@dataclass(slots=True)
class Node:
    """One cronwell process sharing the store: registered at start, renewed by heartbeats.

    A node is alive while its last heartbeat is younger than its lease; once the lease
    has passed, other nodes may take over what it had claimed (see engine/cluster.py).
    """

    node_id: str
    started_at: datetime
    last_heartbeat: datetime
    lease_seconds: float = 10.0
    #: executions its workers held at the last heartbeat
    running: int = 0

    def alive(self, now: datetime) -> bool:
        return (now - self.last_heartbeat).total_seconds() <= self.lease_seconds

    def to_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in field_names(type(self))}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Node:
        values = {name: record[name] for name in field_names(cls) if name in record}
        for name in ("started_at", "last_heartbeat"):
            values[name] = as_utc(values[name])
        return cls(**values)


T = TypeVar("T")
_JOB_CHAINS = ("on_success", "on_failure")
_JOB_TIMES = ("next_run_time", "last_run_time", "created_at", "updated_at")
#: value -> member without Enum.__call__ (two per decoded job)
_KINDS: dict[str, JobKind] = {k.value: k for k in JobKind}
_SURFACES: dict[str, Surface] = {s.value: s for s in Surface}
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names, worked out once per class: stores rebuild 100,000 jobs
    at start, and `dataclasses.fields()` per record was a tenth of that time."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken as UTC (how stores hand them back)."""
    zone = value.tzinfo
    if zone is UTC:  # what the stores and the engine already hold: no new object
        return value
    if zone is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _fast_copy(cls: type[T]) -> type[T]:
    """Give a slots dataclass a `__copy__` that passes every field to its constructor.

    `copy.copy` of a slots dataclass goes through `__reduce_ex__` and rebuilds its state
    dict: 4-14 us for a Job, paid for every event snapshot and every copy handed across
    threads. One `attrgetter` call reading every field, handed positionally to the
    dataclass's own `__init__`, is the same shallow copy in about a quarter of that,
    through public APIs only (every field is an init field; the tests check a copy
    equals its original field by field).
    """
    read_all = attrgetter(*field_names(cls))

    def __copy__(self: T) -> T:
        return cls(*read_all(self))

    cls.__copy__ = __copy__  # type: ignore[attr-defined]
    return cls


_fast_copy(Job)
_fast_copy(Execution)
