"""The Store interface: the one contract every backend keeps.

Rules every backend follows (tests/test_store_contract.py checks them all):
- The caller passes every timestamp; a store never reads the clock (huey's rule), so
  the engine's fake clock reaches all the way down.
- Methods take and return model objects (`engine.model`, `stores.records`), never
  driver types; datetimes come back aware and in UTC.
- Returned objects are the caller's: mutating one never changes what is stored.
- Lookups of a missing id raise the matching `NotFound` subclass; inserting an existing
  id raises `JobExists` (jobs) or stores nothing twice; a duplicate user email raises
  `DuplicateEmail`.
- Driver failures while running are raised as `StoreError` with the driver's message;
  failure to connect or create the schema in `open()` is `StoreUnavailable`.
- Lists of executions are newest first (created_at, then id, descending).
- Groups of writes marked "atomic" below happen all or not at all.
- A job's RUN_COUNTERS (total_executions, last_run_time) change only by the atomic
  writes of `claim_fire` and `finish_execution`; no overlapping job write can lose them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import ExecutionNotFound, InvalidInput, JobNotFound
from engine.model import Execution, Job, Status
from stores.records import Server, User

#: the collection names the scheduler seed documents, used by backup and cleanup too
COLLECTIONS = ("users", "servers", "jobs", "executions")
#: the tasks `Store.maintenance` accepts (MaintenanceJob offers exactly these)
MAINTENANCE_TASKS = ("rebuild_indexes", "optimize_queries", "clear_cache", "vacuum")


def check_collection(name: str) -> None:
    """InvalidInput unless `name` is one of COLLECTIONS (every backend's export uses it)."""
    if name not in COLLECTIONS:
        raise InvalidInput(f"unknown collection {name!r}; one of {', '.join(COLLECTIONS)}")


def check_maintenance_task(task: str) -> None:
    """InvalidInput unless `task` is one of MAINTENANCE_TASKS."""
    if task not in MAINTENANCE_TASKS:
        raise InvalidInput(
            f"unknown maintenance task {task!r}; one of {', '.join(MAINTENANCE_TASKS)}"
        )


#: job fields owned by claim_fire/finish_execution: update_job and add_job(replace=True)
#: never overwrite them (the engine sets last_run_time only through those two writes)
RUN_COUNTERS = ("total_executions", "last_run_time")


@dataclass(frozen=True, slots=True)
class FireClaim:
    """One fire to claim with `Store.claim_fires`: the four arguments of `claim_fire`."""

    job_id: str
    expected_next_run_time: datetime | None
    next_run_time: datetime | None
    executions: Sequence[Execution]


@dataclass(frozen=True, slots=True)
class JobCounts:
    total: int
    enabled: int
    paused: int


class Store(ABC):
    #: short backend name: "memory", "sqlite", "mongo", "oracle"
    backend: str = "abstract"

    # -- lifecycle -------------------------------------------------------------------
    @abstractmethod
    def open(self) -> None:
        """Connect and create tables/collections/indexes idempotently.

        Raises StoreUnavailable with a one-line reason when the store cannot be used.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections; safe to call twice."""

    # -- jobs ------------------------------------------------------------------------
    @abstractmethod
    def add_job(self, job: Job, *, replace: bool = False) -> None:
        """Insert a job (with its first next_run_time, atomically).

        With replace=True an existing job of the same id is overwritten, except that its
        executions are kept and so are its RUN_COUNTERS (they count those executions); a
        new id is inserted with the counters `job` carries. Without replace an existing
        id raises JobExists.
        """

    @abstractmethod
    def update_job(self, job: Job) -> None:
        """Overwrite every field of an existing job except its RUN_COUNTERS, which keep
        their stored values whatever `job` carries. Raises JobNotFound.

        The counters are written only by `claim_fire` and `finish_execution`, as single
        atomic updates; a caller's copy of them may be stale (a worker finished a run
        between the caller's get_job and this write), so writing it back would lose an
        increment or move last_run_time backwards. Callers that show the job after an
        update re-read the counters.
        """

    @abstractmethod
    def remove_job(self, job_id: str) -> None:
        """Delete a job; its executions stay as history. Raises JobNotFound."""

    @abstractmethod
    def get_job(self, job_id: str) -> Job:
        """Raises JobNotFound."""

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """The jobs among `job_ids` that exist, by id (missing ones are left out).

        The loop loads the jobs of a batch of won fires with one call, so workers start
        them without reading the store. This default loops over `get_job`.
        """
        jobs: dict[str, Job] = {}
        for job_id in job_ids:
            with suppress(JobNotFound):
                jobs[job_id] = self.get_job(job_id)
        return jobs

    @abstractmethod
    def list_jobs(self, owner: str | None = None) -> list[Job]:
        """All jobs (of one owner when given), oldest first (created_at, then id)."""

    @abstractmethod
    def count_jobs(self, owner: str | None = None) -> JobCounts:
        """Totals computed in the database."""

    @abstractmethod
    def claim_fire(
        self,
        job_id: str,
        expected_next_run_time: datetime | None,
        next_run_time: datetime | None,
        executions: Sequence[Execution],
    ) -> bool:
        """Atomically claim one fire of a job.

        If the stored job's next_run_time equals `expected_next_run_time`, set it to
        `next_run_time`, set last_run_time to `expected_next_run_time` when executions
        are given, insert `executions`, and return True. Otherwise change nothing and
        return False: another engine (or a modify) got there first. This conditional
        update is what lets several engines share one store and fire each occurrence
        exactly once. A missing job returns False.
        """

    def claim_fires(self, claims: Sequence[FireClaim]) -> list[bool]:
        """Claim many fires at once: result[i] is what `claim_fire` returns for claims[i].

        Each claim keeps `claim_fire`'s contract on its own (a lost claim changes nothing
        and does not undo the others). The engine calls this with every fire due in one
        step, so a burst of due jobs costs one round trip; this default loops over
        `claim_fire`, and SQL/Mongo backends override it with one transaction or bulk write.
        """
        return [
            self.claim_fire(c.job_id, c.expected_next_run_time, c.next_run_time, c.executions)
            for c in claims
        ]

    # -- executions ------------------------------------------------------------------
    @abstractmethod
    def add_execution(self, execution: Execution) -> None:
        """Insert one execution (a manual run, a retry, a skipped fire)."""

    @abstractmethod
    def update_execution(self, execution: Execution) -> None:
        """Overwrite a non-terminal execution (queued -> running). Raises ExecutionNotFound."""

    @abstractmethod
    def finish_execution(self, execution: Execution) -> None:
        """Atomically write a terminal execution and bump its job's total_executions
        (and last_run_time to the execution's started_at when later). The job may be gone.
        Raises ExecutionNotFound when the execution was never added.
        """

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        """Write a batch of workers' progress: `started` overwritten as running
        (`update_execution`), `finished` as terminal (`finish_execution`, counters too).

        The engine's recorder thread calls this with everything workers reported since
        its last write, so one lock and one commit serve many executions. An execution
        the store no longer has (deleted meanwhile) is skipped, not an error: the others
        must still land. This default loops; backends override it with one transaction.
        """
        for execution in started:
            with suppress(ExecutionNotFound):
                self.update_execution(execution)
        for execution in finished:
            with suppress(ExecutionNotFound):
                self.finish_execution(execution)

    @abstractmethod
    def get_execution(self, execution_id: str) -> Execution:
        """Raises ExecutionNotFound."""

    @abstractmethod
    def list_executions(
        self,
        *,
        job_id: str | None = None,
        owner: str | None = None,
        status: Status | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Execution]:
        """Newest first, filtered, paged in the database."""

    @abstractmethod
    def count_executions(
        self, *, job_id: str | None = None, owner: str | None = None, status: Status | None = None
    ) -> int:
        """Count with the same filters as list_executions."""

    @abstractmethod
    def execution_stats(self, owner: str | None = None) -> dict[str, int]:
        """Executions counted by status, grouped in the database ({"completed": 40, ...})."""

    @abstractmethod
    def abandon_running(self, now: datetime, message: str) -> int:
        """Mark every queued/running execution abandoned (completed_at=now, error=message).

        Called once at start, before the engine fires anything. Returns how many.
        """

    @abstractmethod
    def delete_executions_before(
        self, cutoff: datetime, *, job_id: str | None = None, limit: int | None = None
    ) -> int:
        """Delete terminal executions created before `cutoff` (only `job_id`'s when
        given), oldest first and at most `limit` of them (history retention deletes in
        small batches); return how many. Queued, running and scheduled executions are
        never deleted, atomically: one that ends meanwhile is simply left for later."""

    # -- users -----------------------------------------------------------------------
    @abstractmethod
    def add_user(self, user: User) -> None:
        """Raises DuplicateEmail when another user has the email (case-insensitive)."""

    @abstractmethod
    def get_user(self, user_id: str) -> User:
        """Raises UserNotFound."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Oldest first."""

    @abstractmethod
    def update_user(self, user: User) -> None:
        """Raises UserNotFound or DuplicateEmail."""

    @abstractmethod
    def delete_user(self, user_id: str) -> None:
        """Raises UserNotFound. Jobs and servers are the caller's to deal with."""

    # -- servers ---------------------------------------------------------------------
    @abstractmethod
    def add_server(self, server: Server) -> None: ...

    @abstractmethod
    def get_server(self, server_id: str) -> Server:
        """Raises ServerNotFound."""

    @abstractmethod
    def list_servers(self, user_id: str | None = None) -> list[Server]:
        """Oldest first, of one user when given."""

    @abstractmethod
    def update_server(self, server: Server) -> None:
        """Raises ServerNotFound."""

    @abstractmethod
    def delete_server(self, server_id: str) -> None:
        """Raises ServerNotFound."""

    # -- whole-collection work (backup, cleanup, maintenance jobs) --------------------
    @abstractmethod
    def export(self, collection: str) -> Iterator[dict[str, Any]]:
        """Every record of one of COLLECTIONS as a plain dict (servers without
        password_encrypted), streamed, not loaded at once. Raises InvalidInput for
        another name."""

    @abstractmethod
    def maintenance(self, task: str) -> dict[str, Any]:
        """Run one of "rebuild_indexes", "optimize_queries", "clear_cache", "vacuum"
        the way this backend really does it; return what was done. InvalidInput for others.
        """
