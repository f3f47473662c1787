"""The three contracts the engine depends on, and nothing else: triggers, stores, runners.

The engine imports no implementation of these: `engine/triggers/` holds the triggers,
`stores/` the store backends and `runners/` the runners, and the service wires a store
and a runner into `engine.scheduler.Scheduler`. Each method's docstring is its contract;
`tests/test_store_contract.py` checks every backend against `SchedulerStore`, and the
runner tests check `runners.Runner` against `JobRunner`.

Rules every store backend follows:
- The caller passes every timestamp; a store never reads the clock (huey's rule), so
  the engine's fake clock reaches all the way down.
- Methods take and return model objects (`engine.model`), never driver types;
  datetimes come back aware and in UTC.
- Returned objects are the caller's: mutating one never changes what is stored.
- Lookups of a missing id raise the matching `NotFound` subclass; inserting an existing
  id raises `JobExists`.
- Driver failures while running are raised as `StoreError` (the engine retries those
  with backoff, `engine.running.backoff`); failure to connect or create the schema in
  `open()` is `StoreUnavailable`. Any other exception is a bug in the store.
- Lists of executions are newest first (created_at, then id, descending).
- Groups of writes marked "atomic" below happen all or not at all.
- A job's RUN_COUNTERS (total_executions, last_run_time) change only by the atomic
  writes of `claim_fire` and `finish_execution`; no overlapping job write can lose them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine.errors import ExecutionNotFound, JobNotFound

if TYPE_CHECKING:  # engine.model imports the triggers, which import Trigger from here
    from engine.model import Execution, Job, Node, Status


# -- triggers ----------------------------------------------------------------------------
@runtime_checkable
class Trigger(Protocol):
    """When a job fires. A trigger is an immutable value: it answers "when is the next
    fire strictly after `after`?" and serialises to a plain dict so every store keeps it."""

    #: "date", "cron" or "interval"; the key `engine.triggers.trigger_from_dict` reads.
    kind: str

    @property
    def timezone(self) -> str:
        """IANA name of the zone the trigger's fields are read in ("UTC" by default)."""

    def next_fire_time(self, after: datetime) -> datetime | None:
        """Earliest fire time strictly later than `after` (aware), in UTC; None when done.

        Pure: the same `after` always gives the same answer, and it never raises for an
        aware `after` (a trigger that cannot be computed is refused when it is built).
        """

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with a "kind" key; `trigger_from_dict` inverts it."""

    def describe(self) -> str:
        """Human form, e.g. `date[2024-12-31 23:59:59 UTC]` (the scripts surface shows it)."""


# -- stores ------------------------------------------------------------------------------
#: the change feed's guaranteed tail: a node further behind than this reloads every job
CHANGES_KEPT = 10_000

#: job fields owned by claim_fire/finish_execution: update_job and add_job(replace=True)
#: never overwrite them (the engine sets last_run_time only through those two writes)
RUN_COUNTERS = ("total_executions", "last_run_time")
#: the Job fields the engine's timetable keeps of a job (what its start-up load reads)
JOB_SLOT_FIELDS = (
    "id",
    "name",
    "kind",
    "target",
    "owner",
    "trigger",
    "next_run_time",
    "enabled",
    "paused",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "overlap",
)
#: what a row of `SchedulerStore.job_rows` holds, in this order: the slot fields and
#: those the service's start-up observers read
JOB_ROW_FIELDS = (*JOB_SLOT_FIELDS, "history_limit", "notify")


def record_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """The `SchedulerStore.job_rows` row of a job's record (`job_records`)."""
    defaults = _row_defaults()
    return tuple(record.get(name, defaults[name]) for name in JOB_ROW_FIELDS)


def _starts(record: Mapping[str, Any], due_by: datetime) -> bool:
    """True when a load window starting at `due_by` reads this record (`job_rows`)."""
    when = record.get("next_run_time")
    if when is not None and when <= due_by:
        return True
    return record.get("history_limit") is not None or record.get("notify") is not None


@cache
def _row_defaults() -> dict[str, Any]:
    """Each Job field's default; those every record holds (id, name, ...) have none."""
    from engine.model import Job  # not at the top: engine.model imports this module

    return {f.name: f.default for f in fields(Job)}


@dataclass(frozen=True, slots=True)
class FireClaim:
    """One fire to claim with `Store.claim_fires`: the four arguments of `claim_fire`."""

    job_id: str
    expected_next_run_time: datetime | None
    next_run_time: datetime | None
    executions: Sequence[Execution]


@dataclass(frozen=True, slots=True)
class JobChange:
    """One entry of the store's job change feed: job `job_id` was added, changed or
    removed (which one the job's stored state tells); `seq` orders the feed."""

    seq: int
    job_id: str


@dataclass(frozen=True, slots=True)
class JobCounts:
    total: int
    enabled: int
    paused: int


class SchedulerStore(ABC):
    #: short backend name: "memory", "sqlite", "mongo", "oracle"
    backend: str = "abstract"
    #: whether what the store holds outlives the process. For a durable store the
    #: engine makes each run's start crash-proof before it runs (a start journal, or
    #: the `running` mark written first), which is what lets recovery tell a claimed
    #: fire that never started (`take_over`) from one that did; a store that
    #: forgets everything in a crash (memory) has nothing to recover
    durable: bool = True

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

    def job_records(
        self, page: int = 1000, fields: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every stored job as its record (what `Job.from_record` takes: the trigger as
        its dict, times aware in UTC), in pages of at most `page`, in no promised order.
        With `fields` (Job field names), a record needs to hold only those and `id`,
        a field missing from the stored job left out (so it reads as the Job's
        default): a backend that can read less than the whole job does.

        What the start-up load reads: one page at a time, so a million jobs never sit in
        memory at once, and records, not Jobs, since the engine keeps only a slot per
        job. Each page is read on its own: a job written meanwhile may be seen in its old
        or new state, or (added or removed meanwhile) not at all; the change feed and the
        command queue bring those. Records are the caller's. This default pages
        `list_jobs`; backends override it with keyset-paged reads.
        """
        jobs = self.list_jobs()
        for start in range(0, len(jobs), max(page, 1)):
            yield [job.to_record() for job in jobs[start : start + page]]

    def job_rows(
        self, page: int = 1000, due_by: datetime | None = None
    ) -> Iterator[list[Sequence[Any]]]:
        """Every stored job as a row of its `JOB_ROW_FIELDS` values in that order, in
        pages of at most `page`, in no promised order: what the start-up load reads.
        With `due_by`, only the rows a load window starts from (engine/scheduling/
        window.py): the jobs whose next_run_time is at or before it, and every job
        that holds a history_limit or notify (what the start-up observers learn),
        whatever its time.

        A value is what `job_records` would give for the field (a field missing from
        the stored job reads as the Job's default), except that a store may give the
        trigger and notify as their JSON text and next_run_time as its ISO 8601 text,
        as it keeps them: the reader parses each distinct text once, where a million
        jobs share a few thousand (building a record a job was most of the load's
        cost). Pages are read as `job_records` reads them; rows are the caller's. This
        default builds the rows from `job_records`.
        """
        for records in self.job_records(page, JOB_ROW_FIELDS):
            rows: list[Sequence[Any]] = [
                record_row(r) for r in records if due_by is None or _starts(r, due_by)
            ]
            if rows:
                yield rows

    def due_job_rows(
        self, after: tuple[datetime, str | None], until: datetime, limit: int = 1000
    ) -> list[Sequence[Any]]:
        """One page of at most `limit` `job_rows` rows: the jobs whose next_run_time
        is at or before `until` and whose (next_run_time, id) comes after `after` (an
        id of None: after every job of that time), in (next_run_time, id) order. How a
        load window slides forward, a page at a time; SQL and Mongo stores answer it
        from their next_run_time index. This default reads every job."""
        since, after_id = after
        found = []
        for records in self.job_records(1000, JOB_ROW_FIELDS):
            for record in records:
                when = record.get("next_run_time")
                if when is None or when > until or when < since:
                    continue
                if when == since and (after_id is None or record["id"] <= after_id):
                    continue
                found.append((when, record["id"], record))
        found.sort(key=lambda item: (item[0], item[1]))
        return [record_row(record) for _, _, record in found[:limit]]

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
        """Overwrite a non-terminal execution (queued -> running; or an unstarted one
        recovery ends without running it, as `missed`). Its job's counters are not
        touched. Raises ExecutionNotFound."""

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
    def abandon_running(
        self,
        now: datetime,
        message: str,
        *,
        keep_nodes: Collection[str] = (),
        only_nodes: Collection[str] | None = None,
    ) -> list[Execution]:
        """Mark `running` executions abandoned (completed_at=now, error=message),
        atomically; `queued` and `scheduled` ones are left alone (they never started:
        see `take_over`). Its job's counters are not touched.

        Executions recorded by a node in `keep_nodes` (other nodes still alive) are
        left alone; with `only_nodes`, just the executions of those nodes (dead ones,
        found by a sweep) are marked. Called at start, before the engine fires
        anything, and by the sweep of dead nodes. Returns the executions it marked, as
        written (the engine announces each, so a job's `notify` hears of it).
        """

    @abstractmethod
    def delete_executions_before(
        self, cutoff: datetime, *, job_id: str | None = None, limit: int | None = None
    ) -> int:
        """Delete terminal executions created before `cutoff` (only `job_id`'s when
        given), oldest first and at most `limit` of them (history retention deletes in
        small batches); return how many. Queued, running and scheduled executions are
        never deleted, atomically: one that ends meanwhile is simply left for later."""

    # -- several nodes on one store ---------------------------------------------------
    # Every write of a job (add_job, update_job, remove_job; not the claims, whose losers
    # reload the job anyway) also appends one JobChange with the next `seq`, in the same
    # atomic write where the backend has transactions (SQL); where it has not (MongoDB)
    # the change is appended right after the job write, so a reader that sees a change
    # always finds the job's new state. Seqs are unique and increase; a reader may see a
    # later seq before an earlier one whose writer is still in flight, so readers wait a
    # moment for a gap before moving past it (engine/cluster.py). A backend keeps at
    # least the newest CHANGES_KEPT changes until a node prunes them.
    @abstractmethod
    def job_changes(self, after: int, limit: int = 1000) -> list[JobChange]:
        """Changes with seq greater than `after`, ascending by seq, at most `limit`."""

    @abstractmethod
    def last_job_change(self) -> int:
        """The highest seq handed out so far (0 before the first job write)."""

    @abstractmethod
    def prune_job_changes(self, through: int) -> int:
        """Delete the changes with seq up to `through`; return how many."""

    @abstractmethod
    def heartbeat(self, node: Node) -> None:
        """Register `node` or renew it: the record with its node_id is overwritten."""

    @abstractmethod
    def list_nodes(self) -> list[Node]:
        """Every registered node, oldest start first (started_at, then node_id)."""

    @abstractmethod
    def remove_node(self, node_id: str) -> None:
        """Forget a node (it stopped cleanly); a node not registered is no error."""

    @abstractmethod
    def count_active(self) -> dict[str, int]:
        """Queued and running executions per job id, over every node (jobs with none
        are left out): what max_instances limits when several nodes share the store."""

    @abstractmethod
    def take_over(self, from_node: str | None, to_node: str | None, note: str) -> list[Execution]:
        """Take over the fires a stopped process (node `from_node`; None: written by no
        node) claimed but never started: every execution of it still `queued` gets
        `to_node` as its node and `note` appended to its output (why it is queued
        again), and is returned as now stored, oldest first (created_at, then id).

        Each stays `queued` with its id, fire time and attempt unchanged: the caller
        runs it (the worker's `running` mark comes next) or ends it without running
        (`update_execution`, e.g. `missed` beyond the misfire grace); no new execution
        is made for the fire, so a fire runs at most once and is recorded exactly once.
        Each reassignment is conditional on the execution still being queued and still
        `from_node`'s (SQL: rows locked in one transaction, `FOR UPDATE SKIP LOCKED` on
        Oracle; MongoDB: one conditional update each), so two nodes sweeping the same
        dead node at once never both take one. (Whether one of them started an instant
        before a crash, its `running` mark not yet stored, is the engine's to tell: see
        `durable` and engine/running/journal.py.)
        """

    @abstractmethod
    def start_claimed(self, execution: Execution) -> bool:
        """Overwrite the stored execution with `execution` (which the caller marked
        running) only if the stored one is still `queued` and still `execution.node`'s;
        True when written, False (nothing written) when it is not, or is gone.

        Atomic against `take_over` (SQL: the row read and written in one transaction,
        locked with `FOR UPDATE` on Oracle; MongoDB: one conditional replace), so of a
        node starting a fire and another taking it over, exactly one succeeds. A node
        whose lease may have lapsed starts its claimed fires through this
        (engine/running/fence.py); the ordinary start does not pay for it.
        """

    @abstractmethod
    def request_cancel(self, execution_id: str, node_id: str) -> None:
        """Ask node `node_id`, which runs `execution_id`, to cancel it (idempotent)."""

    @abstractmethod
    def take_cancel_requests(self, node_id: str) -> list[str]:
        """The executions node `node_id` was asked to cancel, atomically removed from the
        requests as they are returned (each request is handed out once)."""

    def write_batch(self) -> AbstractContextManager[None]:
        """A context in which the writes of one thread form one transaction (group commit).

        The loop applies a run of queued job adds inside one `write_batch`, so a backend
        that can commit them together does so once. Writes inside are not visible to
        other connections before the block ends; an exception undoes them all. This
        default is no grouping at all: each write commits by itself.
        """
        return nullcontext()


def abandons(
    node: str | None, keep_nodes: Collection[str], only_nodes: Collection[str] | None
) -> bool:
    """Whether `abandon_running` with these node filters marks an execution of `node`
    (a backend that filters in Python uses this, so all of them decide alike)."""
    if only_nodes is not None:
        return node in only_nodes
    return node not in keep_nodes


# -- runners -----------------------------------------------------------------------------
class CancelSignal(Protocol):
    """How the engine asks a run to stop: a `threading.Event` is one, and so is the
    engine's cheaper `engine.running.cancel.CancelFlag`."""

    def is_set(self) -> bool: ...
    def set(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or `timeout` seconds pass; True when set."""


@dataclass(slots=True)
class Outcome:
    #: COMPLETED, FAILED, TIMEOUT or CANCELLED
    status: Status
    output: str = ""
    error: str = ""
    return_value: Any = None
    exit_code: int | None = None


@dataclass(slots=True)
class RunRequest:
    job: Job
    execution: Execution
    #: set by the engine to ask a run to stop; child processes are killed, job
    #: classes are expected to check it between steps
    cancel: CancelSignal = field(default_factory=threading.Event)
    timeout: float | None = None
    output_cap: int = 64 * 1024
    script_roots: tuple[Path, ...] = ()
    #: opaque to the engine and runners: the job classes' context (store, settings)
    services: Any = None
    #: the run's own variables for child processes (the job's `env` decrypted, and the
    #: CRONWELL_JOB_ID / _EXECUTION_ID / _SCHEDULED_FOR of this run): set by the runner
    env: dict[str, str] = field(default_factory=dict)
    #: where a runner also writes output as it is produced, for readers while the job
    #: runs (`engine.running.live.LiveOutput`); None when nobody reads it live
    live: OutputSink | None = None
    #: called by the runner once the run has begun (its process spawned; a job class
    #: about to be called), so what gives way to a fire's start stops waiting
    #: (engine/running/wakes.py); None when nothing waits. The executor calls it again
    #: after the run, so a runner that never does costs only a longer wait.
    started: Callable[[], None] | None = None


class RunObserver(Protocol):
    """Hears of every run that ended, as part of recording it (the service's metrics).

    The engine calls `ended` once per execution that reached completed, failed, timeout
    or cancelled, right after its terminal record is written: on the recorder thread,
    which is awake for that write anyway, so observing costs no thread a wake-up (an
    event listener would wake the event thread once per run). Fires that never ran
    (missed, skipped) are not reported here: their events say so.
    """

    def ended(self, execution: Execution) -> None:
        """Must be quick, must not block, must not keep or change `execution`."""


#: the names a write to an OutputSink is tagged with
STDOUT = "stdout"
STDERR = "stderr"


class OutputSink(Protocol):
    """Takes a job's output as it is printed (bytes, in arrival order), each write
    tagged with the stream it came from (STDOUT or STDERR); never blocks."""

    def write(self, data: bytes, stream: str = STDOUT) -> None: ...


class JobRunner(Protocol):
    """Whatever runs a job: the engine calls it on a pool thread, one request at a time
    per thread, and records the Outcome it returns (`runners.Runner` in the service)."""

    def __call__(self, request: RunRequest) -> Outcome:
        """Run the job to an Outcome; must not raise (errors become FAILED outcomes).

        It returns once the run is over (child processes reaped), honours
        `request.cancel` and `request.timeout`, and keeps at most `request.output_cap`
        bytes of output.
        """
