"""Applying commands on the loop thread: the store first, then the in-memory timetable.

Each handler returns the command's result (a snapshot the caller may keep) or raises a
`CronwellError`; `apply` resolves the command's future with either. A future the caller
cancelled before the loop reached it withdraws the command. A cancel of a running
execution resolves later, when the worker records its terminal status.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from datetime import UTC, datetime
from typing import Any

from engine import events as ev
from engine.errors import Conflict, CronwellError, ExecutionNotCancellable, InvalidField
from engine.events import EventBus
from engine.interfaces import Outcome, SchedulerStore
from engine.model import EPOCH, Execution, Job, Status
from engine.records import new_execution
from engine.running.executor import CANCELLED_BEFORE_START, JOB_GONE, SHUT_DOWN_BEFORE_START
from engine.running.pool import WorkerPool, WorkItem
from engine.scheduling import backfill
from engine.scheduling.chains import check_chains
from engine.scheduling.commands import (
    AddJob,
    AddJobs,
    Backfill,
    CancelExecution,
    Command,
    ModifyJob,
    PauseJob,
    RemoveJob,
    ResumeJob,
    RunChained,
    RunJobNow,
    RunTakenOver,
    ScheduleRetry,
    SyncJobs,
)
from engine.scheduling.policy import first_fire_time
from engine.scheduling.takeover import hand_over, judge_unstarted
from engine.scheduling.timetable import Timetable
from engine.scheduling.validate import check_changes, check_job

log = logging.getLogger(__name__)
#: returned by a handler that resolves its command's future later
DEFERRED = object()
#: rows a full reload reads at a time (the ids of the jobs due within a load window)
RELOAD_PAGE = 2000
JOB_REMOVED = "the job was removed before this retry ran"
#: how long a cancel waits for an execution in transition to show where it is
TRANSITION_WAIT = 1.0
PAUSED_BEFORE_DUE = "the job was paused after this fire was armed, before its due time"


def _resolve(future: Future[Any], result: object) -> None:
    try:  # not contextlib.suppress: this runs once per command (adds are hot)
        future.set_result(result)
    except InvalidStateError:  # cancelled meanwhile
        pass


def _fail(future: Future[Any], exc: Exception, command: Command) -> None:
    if not isinstance(exc, CronwellError):
        log.error("%s failed unexpectedly", type(command).__name__, exc_info=exc)
    with contextlib.suppress(InvalidStateError):
        future.set_exception(exc)


class CommandHandler:
    def __init__(
        self,
        store: SchedulerStore,
        timetable: Timetable,
        pool: WorkerPool,
        events: EventBus,
        record: Callable[[WorkItem, Outcome], object],
        flush_records: Callable[[float], bool] = lambda timeout: True,
        *,
        node: str | None = None,
    ) -> None:
        self._store = store
        self._node = node
        self._timetable = timetable
        self._pool = pool
        self._events = events
        self._record = record
        #: waits until the recorder has written what workers reported (`Recorder.flush`)
        self._flush_records = flush_records
        self._handlers: dict[type[Command], Callable[[Any, datetime], object]] = {
            AddJob: self.add_job,
            AddJobs: self.add_jobs,
            ModifyJob: self.modify_job,
            RemoveJob: self.remove_job,
            PauseJob: self.pause_job,
            ResumeJob: self.resume_job,
            RunJobNow: self.run_job_now,
            CancelExecution: self.cancel_execution,
            ScheduleRetry: self.schedule_retry,
            SyncJobs: self.sync_jobs,
            RunTakenOver: self.run_taken_over,
            RunChained: self.run_chained,
            Backfill: self.backfill,
        }
        #: job writes of this node whose change the feed has not brought back yet, by
        #: job id (counted only while a node keeper follows the feed; see sync_jobs)
        self._own_changes: Counter[str] = Counter()
        self._annotate_lock = threading.Lock()
        self.following_changes = False
        #: asks another node to cancel what it runs and settles the future once it has
        #: (`NodeKeeper.wait_remote_cancel`); None while this engine is no node
        self.forward_cancel: Callable[[str, str, Future[Any]], None] | None = None

    def apply(self, command: Command, now: datetime) -> None:
        future = command.future
        if future.cancelled():  # the caller withdrew it
            return
        try:
            result = self._handlers[type(command)](command, now)
        except Exception as exc:
            _fail(future, exc, command)
        else:
            if result is not DEFERRED:
                _resolve(future, result)

    # -- jobs ------------------------------------------------------------------------
    def add_job(self, command: AddJob, now: datetime) -> Job:
        job = self._store_added(command, now)
        self._schedule_added(job, now)
        return job

    def add_jobs(self, command: AddJobs, now: datetime) -> object:
        """Several adds in a row with one commit, in the store's `write_batch` (SQLite:
        one transaction instead of one per add; backends without grouping commit each). Each add still succeeds or
        fails on its own (a duplicate id fails only its own future); a job reaches the
        timetable, its event and its caller only once the commit has succeeded."""
        adds = [add for add in command.adds if not add.future.cancelled()]
        stored: list[tuple[AddJob, Job]] = []
        try:
            with self._store.write_batch():
                for add in adds:
                    try:
                        stored.append((add, self._store_added(add, now)))
                    except Exception as exc:
                        _fail(add.future, exc, add)
        except Exception as exc:  # the commit failed: none of `stored` is in the store
            for add, _ in stored:
                _fail(add.future, exc, add)
            return DEFERRED
        for add, job in stored:
            try:
                self._schedule_added(job, now)
            except Exception as exc:
                _fail(add.future, exc, add)
            else:
                _resolve(add.future, job)
        return DEFERRED

    def _store_added(self, command: AddJob, now: datetime) -> Job:
        # The engine takes the caller's Job (no copy: adds are a measured hot path); the
        # store and the timetable keep their own copies of what they need.
        job = check_job(command.job)
        check_chains(job, self._store)
        job.next_run_time = (
            first_fire_time(job.trigger, now, job.last_run_time) if job.active else None
        )
        if job.created_at == EPOCH:
            job.created_at = now
        job.updated_at = now
        self._timetable.share(job)
        self._store.add_job(job, replace=command.replace)
        self._wrote(job.id)
        if command.replace:
            self._show_stored_counters(job)
        return job

    def _schedule_added(self, job: Job, now: datetime) -> None:
        self._timetable.put_job(job)
        self._events.emit(ev.JOB_ADDED, job.id, now, job=job)

    def modify_job(self, command: ModifyJob, now: datetime) -> Job:
        changes = check_changes(command.job_id, command.changes)
        before = self._store.get_job(command.job_id)
        job = check_job(dataclasses.replace(before, **changes))
        if "on_success" in changes or "on_failure" in changes:
            check_chains(job, self._store)
        if not job.active:
            job.next_run_time = None
        elif "next_run_time" not in changes and (
            "trigger" in changes or not before.active or before.next_run_time is None
        ):
            job.next_run_time = first_fire_time(job.trigger, now, job.last_run_time)
        job.updated_at = now
        self._store.update_job(job)
        self._wrote(job.id)
        self._show_stored_counters(job)
        self._timetable.put_job(job)
        self._pool.refresh_job(copy.copy(job))
        self._events.emit(ev.JOB_MODIFIED, job.id, now, job=job)
        return job

    def _show_stored_counters(self, job: Job) -> None:
        """Give `job` the run counters the store kept: the store never overwrites them
        (a worker may have finished a run since `job` was read), so what the caller
        gets back must not show the stale copy."""
        stored = self._store.get_job(job.id)
        job.total_executions, job.last_run_time = stored.total_executions, stored.last_run_time

    def remove_job(self, command: RemoveJob, now: datetime) -> None:
        # the removed job rides on its event (listeners filter by owner), read only
        # when someone listens; a missing id raises JobNotFound either way
        wanted = self._events.wants(ev.JOB_REMOVED, command.job_id)
        removed = self._store.get_job(command.job_id) if wanted else None
        self._store.remove_job(command.job_id)
        self._wrote(command.job_id)
        self._timetable.drop_job(command.job_id)
        for retry in [r for r in self._timetable.retries.values() if r.job_id == command.job_id]:
            self._timetable.drop_retry(retry.id)
            self._record(WorkItem(retry), Outcome(Status.CANCELLED, error=JOB_REMOVED))
        self._withdraw(command.job_id, JOB_GONE)
        self._events.emit(ev.JOB_REMOVED, command.job_id, now, job=removed)

    def _withdraw(self, job_id: str, reason: str, due_after: float | None = None) -> None:
        """Record as cancelled the job's executions that had not started."""
        for item in self._pool.withdraw_job(job_id, reason, due_after):
            self._record(item, Outcome(Status.CANCELLED, error=reason))

    def pause_job(self, command: PauseJob, now: datetime) -> Job:
        job = self._store.get_job(command.job_id)
        job.paused = True
        job.next_run_time = None
        job.updated_at = now
        self._store.update_job(job)
        self._wrote(job.id)
        self._show_stored_counters(job)
        self._timetable.drop_job(job.id)
        self._withdraw(job.id, PAUSED_BEFORE_DUE, due_after=now.timestamp())
        self._events.emit(ev.JOB_PAUSED, job.id, now, job=job)
        return job

    def resume_job(self, command: ResumeJob, now: datetime) -> Job:
        job = self._store.get_job(command.job_id)
        if not job.enabled:  # resuming would not make it fire: say so, change nothing
            raise Conflict(
                f"Job {job.id} is disabled; enable it first (PUT /api/scheduler/jobs/{job.id} "
                'with {"is_enabled": true}), then resume it'
            )
        if not job.paused:
            return job
        job.paused = False
        job.next_run_time = (
            first_fire_time(job.trigger, now, job.last_run_time) if job.active else None
        )
        job.updated_at = now
        self._store.update_job(job)
        self._wrote(job.id)
        self._show_stored_counters(job)
        self._timetable.put_job(job)
        self._events.emit(ev.JOB_RESUMED, job.id, now, job=job)
        return job

    # -- executions ------------------------------------------------------------------
    def run_job_now(self, command: RunJobNow, now: datetime) -> Execution:
        return self._run_now(self._store.get_job(command.job_id), now, "manual")

    def _run_now(
        self, job: Job, now: datetime, reason: str, triggered_by: str | None = None
    ) -> Execution:
        """Queue a run of `job` outside its schedule (not limited by max_instances);
        recorded skipped when the backlog is full."""
        if self._pool.room() <= 0:
            skipped = new_execution(
                job,
                job.kind.value,
                Status.SKIPPED,
                now,
                reason=reason,
                error=self._pool.full_error,
                node=self._node,
            )
            skipped.triggered_by = triggered_by
            self._store.add_execution(skipped)
            self._events.emit(ev.JOB_MISSED, job.id, now, execution=skipped)
            return skipped
        execution = new_execution(
            job, job.kind.value, Status.QUEUED, now, reason=reason, node=self._node
        )
        execution.triggered_by = triggered_by
        self._store.add_execution(execution)
        result = copy.copy(execution)
        item = WorkItem(execution, job=job)
        # before the hand-off: the worker's own events must follow this one
        self._events.emit(ev.EXECUTION_SUBMITTED, job.id, now, execution=result)
        if self._pool.submit([item]) == 0:
            self._record(item, Outcome(Status.CANCELLED, error=SHUT_DOWN_BEFORE_START))
        return result

    def backfill(self, command: Backfill, now: datetime) -> list[Execution]:
        """Record every occurrence in the range `queued` (one transaction where the store
        groups writes), then hand them to the pool to run oldest first."""
        if command.end <= command.start:
            raise InvalidField("end", "end must be later than start")
        if command.end > now:
            raise InvalidField(
                "end",
                f"end must not be in the future (now is {now.isoformat()}): a backfill "
                "runs occurrences that already fell due",
            )
        job = self._store.get_job(command.job_id)
        times = backfill.occurrences(job.trigger, command.start, command.end)
        decision = backfill.decision(job.overlap, job.max_instances)
        records: list[Execution] = []
        for when in times:
            record = new_execution(
                job,
                job.kind.value,
                Status.QUEUED,
                now,
                scheduled_for=when,
                reason="backfill",
                node=self._node,
            )
            record.overlap_decision = decision
            records.append(record)
        with self._store.write_batch():
            for record in records:
                self._store.add_execution(record)
        results = [copy.copy(r) for r in records]
        at_once = job.max_instances if job.overlap == "allow" else 1
        for item in self._pool.hold([WorkItem(r, job=job) for r in records], at_once):
            self._record(item, Outcome(Status.CANCELLED, error=SHUT_DOWN_BEFORE_START))
        for result in results:
            self._events.emit(ev.EXECUTION_SUBMITTED, job.id, now, execution=result)
        return results

    def run_chained(self, command: RunChained, now: datetime) -> None:
        """Start the jobs a finished run's chain names, each once, recording on the
        finished execution what was started (or why not: a job removed, disabled or
        paused since is reported, never an error)."""
        source = command.execution
        jobs = self._store.get_jobs(command.job_ids)
        chained: list[dict[str, Any]] = []
        for job_id in command.job_ids:
            job = jobs.get(job_id)
            entry: dict[str, Any] = {"job_id": job_id}
            if job is None:
                entry["error"] = f"job {job_id} was removed; nothing was started"
            elif not job.active:
                state = "disabled" if not job.enabled else "paused"
                entry["error"] = f"job {job_id} is {state}; nothing was started"
            else:
                try:
                    started = self._run_now(job, now, "chain", triggered_by=source.id)
                except Exception as exc:  # the store failed: say so on the source
                    entry["error"] = f"starting job {job_id} failed: {exc}"
                else:
                    entry["execution_id"] = started.id
                    if started.status is Status.SKIPPED:
                        entry["error"] = started.error
            if "error" in entry:
                log.warning("execution %s: chain to %s: %s", source.id, job_id, entry["error"])
            chained.append(entry)
        try:
            self.annotate(source.id, lambda e: setattr(e, "chained", [*e.chained, *chained]))
        except Exception as exc:
            log.error("could not record the chain of execution %s (%s)", source.id, exc)

    def annotate(self, execution_id: str, change: Callable[[Execution], object]) -> None:
        """Read a (finished) execution, apply `change`, write it back, one at a time per
        engine: what a chain started and the notifications sent are added to the same
        record from different threads, and neither may undo the other."""
        with self._annotate_lock:
            stored = self._store.get_execution(execution_id)
            change(stored)
            self._store.update_execution(stored)

    def cancel_execution(self, command: CancelExecution, now: datetime) -> object:
        execution_id = command.execution_id
        queued = self._pool.take_queued(execution_id)
        if queued is None:
            retry = self._timetable.drop_retry(execution_id)
            queued = None if retry is None else WorkItem(retry)
        if queued is not None:
            self._record(queued, Outcome(Status.CANCELLED, error=CANCELLED_BEFORE_START))
            return copy.copy(queued.execution)
        for attempt in range(2):
            running = self._pool.find_running(execution_id)
            if running is not None and running.add_waiter(command.future):
                running.cancel.set()
                return DEFERRED
            if attempt == 0:
                # In neither place: it ended, or it is between the two (a worker just
                # took it, or just reported its end). Let the recorder catch up, which
                # also gives a taking worker time to register it, and look once more.
                self._flush_records(TRANSITION_WAIT)
        stored = self._store.get_execution(execution_id)
        if (
            command.forward
            and self.forward_cancel is not None
            and not stored.terminal
            and stored.node not in (None, self._node)
        ):
            self.forward_cancel(execution_id, stored.node, command.future)
            return DEFERRED
        raise ExecutionNotCancellable(execution_id, str(stored.status))

    # -- several nodes ----------------------------------------------------------------
    def _wrote(self, job_id: str) -> None:
        """Note one job write of this node: its change will come back through the feed."""
        if self.following_changes:
            self._own_changes[job_id] += 1

    def sync_jobs(self, command: SyncJobs, now: datetime) -> None:
        """Bring the timetable in line with the store for the jobs other nodes changed.

        Each change the feed names is matched against this node's own writes of that
        job first (one write, one change): those are already in the timetable. Whatever
        is left was written elsewhere, and the job is reloaded as the store has it now,
        so the order changes arrive in does not matter: the last reload wins, and it
        reads the latest state. A job gone from the store, or no longer active, leaves
        the timetable, and fires armed for it ahead of their time are withdrawn.
        """
        if command.job_ids is None:
            wanted = self._due_ids() | set(self._timetable.jobs)
            self._own_changes.clear()
        else:
            wanted = set()
            for job_id in command.job_ids:
                if self._own_changes[job_id] > 0:
                    self._own_changes[job_id] -= 1
                    if not self._own_changes[job_id]:
                        del self._own_changes[job_id]
                else:
                    wanted.add(job_id)
        if not wanted:
            return
        stored = self._store.get_jobs(sorted(wanted))
        for job_id in wanted:
            job = stored.get(job_id)
            if job is None:
                self._timetable.drop_job(job_id)
                self._withdraw(job_id, JOB_GONE)
            elif not job.active or job.next_run_time is None:
                self._timetable.drop_job(job_id)
                self._withdraw(job_id, PAUSED_BEFORE_DUE, due_after=now.timestamp())
            else:
                self._timetable.share(job)
                self._timetable.put_job(job)
                self._pool.refresh_job(copy.copy(job))

    def _due_ids(self) -> set[str]:
        """Every stored job a full reload must look at: all of them, or with a load
        window only those due by its edge (the window reads the later ones from the
        store itself when it reaches them, so a million stored jobs are not reloaded)."""
        edge = self._timetable.horizon_ts
        if math.isinf(edge):
            return {job.id for job in self._store.list_jobs()}
        due_by = datetime.fromtimestamp(edge, UTC)
        return {row[0] for page in self._store.job_rows(RELOAD_PAGE, due_by) for row in page}

    def run_taken_over(self, command: RunTakenOver, now: datetime) -> None:
        """Run the fires a dead node claimed and never started, exactly once each (the
        store handed them to this node alone), judged as recovery judges them."""
        requeued, ended = judge_unstarted(self._store, command.executions, now)
        hand_over(self._pool, self._record, self._events, requeued, ended, now)
        log.info(
            "took over %d queued execution(s) of node %s: %d run again, %d ended",
            len(command.executions),
            command.from_node,
            len(requeued),
            len(ended),
        )

    def schedule_retry(self, command: ScheduleRetry, now: datetime) -> None:
        self._timetable.put_retry(command.execution)
