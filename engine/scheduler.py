"""The Scheduler: the one object the service (and the tests) drive the engine through.

It wires the parts together: commands go through a bounded queue to the loop thread
(the single writer of job state), due fires are claimed in the store and handed to a
bounded worker pool, and events go to listeners on their own thread. Reads (jobs,
executions, stats) do not come here: callers read the store directly.

Commands are thread-safe and return a `concurrent.futures.Future`; a refused command
(queue full: `EngineBusy`; after shutdown: `EngineStopped`) returns an already failed
future, so `await asyncio.wrap_future(...)` raises it like any other error.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.clock import Clock, SystemClock
from engine.cluster import NodeKeeper
from engine.errors import EngineStopped
from engine.events import EventBus
from engine.interfaces import JobRunner, Outcome, RunObserver, SchedulerStore
from engine.model import Execution, Job, Status, as_utc
from engine.running.executor import SHUT_DOWN_BEFORE_START, Executor
from engine.running.fence import StartFence
from engine.running.journal import StartJournal
from engine.running.live import LiveOutput
from engine.running.pool import WorkerPool
from engine.running.recorder import Recorder
from engine.running.wakes import ArmedWakes
from engine.scheduling.commands import (
    AddJob,
    Backfill,
    CancelExecution,
    CommandQueue,
    ModifyJob,
    PauseJob,
    RemoveJob,
    ResumeJob,
    RunChained,
    RunJobNow,
    ScheduleRetry,
)
from engine.scheduling.firing import Firer
from engine.scheduling.handlers import CommandHandler
from engine.scheduling.loop import EngineLoop
from engine.scheduling.recovery import (
    JobObserver,
    KillLeftovers,
    Recovery,
    announce_abandoned,
    recover,
)
from engine.scheduling.takeover import hand_over
from engine.scheduling.timetable import Timetable
from engine.scheduling.window import LoadWindow

log = logging.getLogger(__name__)
#: after a shutdown timeout, how long cancelled runs get to stop before being recorded
CANCEL_GRACE = 5.0
#: how long shutdown waits for the recorder to write what workers reported
RECORDER_DRAIN = 30.0
RUNNING_AT_SHUTDOWN = "cronwell shut down while this execution was running (waited {:g} s)"


class Scheduler:
    def __init__(
        self,
        store: SchedulerStore,
        runner: JobRunner,
        *,
        clock: Clock | None = None,
        pool_size: int = 10,
        queue_size: int = 10_000,
        backlog_limit: int = 100_000,
        output_cap: int = 64 * 1024,
        script_roots: tuple[Path, ...] = (),
        services: Any = None,
        events: EventBus | None = None,
        node_id: str | None = None,
        lease_seconds: float = 10.0,
        kill_leftovers: KillLeftovers | None = None,
        journal_folder: Path | None = None,
        observer: RunObserver | None = None,
        load_ahead: float | None = None,
    ) -> None:
        """`load_ahead` (seconds): hold in memory only the jobs due within it, reading
        the rest from the store as they come near (engine/scheduling/window.py); None
        holds every scheduled job."""
        self.store = store
        #: this process's name in the store: stamped on every execution it records
        self.node_id = node_id
        #: kills what a stopped process's runs left running (see recovery.py)
        self._kill_leftovers = kill_leftovers
        #: which runs this process started, kept through a crash (running/journal.py);
        #: only a store that keeps its records through a crash needs one
        self._journal = (
            StartJournal(journal_folder) if journal_folder is not None and store.durable else None
        )
        self.clock: Clock = clock or SystemClock()
        self._owns_events = events is None
        self.events = events if events is not None else EventBus()
        self.cancel_grace = CANCEL_GRACE
        self._stopping = threading.Event()
        self._commands = CommandQueue(queue_size)
        self._timetable = Timetable()
        self._recorder = Recorder(store, self._stopping, journal=self._journal, events=self.events)
        #: armed fires' due instants, which the loop and the recorder step aside for
        wakes = ArmedWakes(self.clock.timestamp)
        #: the service's event loop gives way to their starts too (api/give_way.py)
        self.wakes = wakes
        self._recorder.wakes = wakes
        #: a node's starts after its lease may have lapsed go through the store
        fence = StartFence(lease_seconds) if node_id is not None else None
        self._executor = Executor(
            store,
            runner,
            self.clock,
            self.events,
            output_cap=output_cap,
            script_roots=tuple(script_roots),
            services=services,
            schedule_retry=self._post_retry,
            stopping=self._stopping,
            recorder=self._recorder,
            node=node_id,
            journal=self._journal,
            observer=observer,
            run_chained=self._post_chained,
            fence=fence,
            wakes=wakes,
        )
        self._pool = WorkerPool(pool_size, backlog_limit, self._executor)
        if self._journal is None:
            # holding batches back in a crowd delays its running marks; only with a start
            # journal is a mark what closes a crash window (journal.py), so only then not
            pool, clock = self._pool, self.clock
            self._recorder.hold_back_while(lambda: pool.due_waiting(clock.timestamp()))
        self._firer = Firer(
            store,
            self._timetable,
            self._pool,
            self.events,
            self._executor.record,
            node=node_id,
        )
        self._handler = CommandHandler(
            store,
            self._timetable,
            self._pool,
            self.events,
            self._executor.record,
            self._recorder.flush,
            node=node_id,
        )
        self._loop = EngineLoop(
            self.clock,
            self._commands,
            self._timetable,
            self._firer,
            self._handler,
        )
        self._loop.wakes = wakes
        self._firer.pace = self._loop.pace
        if load_ahead is not None:
            self._loop.window = LoadWindow(store, self._timetable, load_ahead)
        #: with a node id, this engine is one node of several on the store
        self._node: NodeKeeper | None = None
        if node_id is not None:
            self._node = NodeKeeper(
                store,
                node_id,
                self.clock,
                self._commands.post_internal,
                lambda: len(self._pool.running_items()),
                lease_seconds=lease_seconds,
                events=self.events,
                fence=fence,
            )
            self._handler.following_changes = True
            self._firer.shared = lambda: self._node is not None and self._node.others_alive
            self._handler.forward_cancel = self._node.wait_remote_cancel
        self._state = "new"
        self._state_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------
    def start(
        self,
        *,
        loop_thread: bool = True,
        observers: Sequence[JobObserver] = (),
        observed_fields: Sequence[str] = (),
    ) -> Recovery:
        """Recover from the store, start the workers and (unless told not to, for tests
        that drive `run_once` by hand) the loop thread. `observers` see stored
        jobs' records, holding at least `observed_fields`, as recovery loads them
        (which ones: `recovery.load_jobs`)."""
        with self._state_lock:
            if self._state != "new":
                raise EngineStopped(f"the scheduler cannot start: it is {self._state}")
            if self._node is not None:
                self._node.register()
            with self._loop.step_lock:
                now = self.clock.now()
                journal = self._journal
                started = journal.take_left_over() if journal is not None else set()
                window = self._loop.window
                recovery = recover(
                    self.store,
                    self._timetable,
                    now,
                    self._kill_leftovers,
                    started,
                    self.node_id,
                    observers,
                    observed_fields,
                    due_by=None if window is None else window.open(now),
                )
                if journal is not None:
                    journal.forget_left_over()
                    journal.open()
                if self._node is not None:
                    self._node.journaled = set(recovery.journaled)
            self._pool.start()
            self._requeue(recovery, now)
            if loop_thread:
                self._loop.start()
                if self._node is not None:
                    self._node.start()
            self._state = "running"
        return recovery

    def _requeue(self, recovery: Recovery, now: datetime) -> None:
        """Hand the unstarted fires recovery took over to the workers (they run before
        anything the first step fires), and tell listeners what became of each."""
        record = self._executor.record
        announce_abandoned(self.events, recovery.abandoned_runs, now)
        hand_over(self._pool, record, self.events, list(recovery.requeued), recovery.ended, now)

    @property
    def running(self) -> bool:
        return self._state == "running"

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop firing; let running executions finish within `timeout`, then cancel them.

        Commands not yet applied fail with EngineStopped; queued executions and those
        still running after the grace are recorded `cancelled`. Safe to call twice.
        """
        with self._state_lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
        for command in self._commands.close():
            if command.future.set_running_or_notify_cancel():
                command.future.set_exception(EngineStopped("the scheduler shut down first"))
        self._loop.stop()
        now_ts = self.clock.timestamp()
        for item in self._pool.running_items():
            if item.not_before > now_ts:  # armed ahead of its due time: no new fires
                item.cancel.set()
        for item in self._pool.stop_intake():
            self._executor.record(item, Outcome(Status.CANCELLED, error=SHUT_DOWN_BEFORE_START))
        if not self._pool.wait_idle(timeout):
            running = self._pool.running_items()
            log.warning("shutdown: cancelling %d execution(s) still running", len(running))
            for item in running:
                item.cancel.set()
            if not self._pool.wait_idle(self.cancel_grace):
                error = RUNNING_AT_SHUTDOWN.format(timeout)
                for item in self._pool.running_items():
                    outcome = Outcome(Status.CANCELLED, error=error)
                    self._executor.record(item, outcome, deferred=True)
        self._recorder.stop(RECORDER_DRAIN)  # before `stopping`: its store writes still retry
        if self._journal is not None:
            self._journal.close()
        if self._node is not None:  # after the last record: the node leaves the store
            self._node.stop()
        self._stopping.set()
        self._pool.join(0.2)
        if self._owns_events:
            self.events.close()

    # -- commands --------------------------------------------------------------------
    def add_job(self, job: Job, *, replace: bool = False) -> Future[Job]:
        return self._commands.put(AddJob(job, replace))

    def modify_job(self, job_id: str, **changes: Any) -> Future[Job]:
        return self._commands.put(ModifyJob(job_id, changes))

    def remove_job(self, job_id: str) -> Future[None]:
        return self._commands.put(RemoveJob(job_id))

    def pause_job(self, job_id: str) -> Future[Job]:
        return self._commands.put(PauseJob(job_id))

    def resume_job(self, job_id: str) -> Future[Job]:
        return self._commands.put(ResumeJob(job_id))

    def run_job_now(self, job_id: str) -> Future[Execution]:
        return self._commands.put(RunJobNow(job_id))

    def backfill(self, job_id: str, start: datetime, end: datetime) -> Future[list[Execution]]:
        """Record and run the occurrences of the job's schedule in [start, end] (past)."""
        return self._commands.put(Backfill(job_id, as_utc(start), as_utc(end)))

    def annotate_execution(self, execution_id: str, change: Callable[[Execution], object]) -> None:
        """Apply `change` to the stored execution and write it back, serialised with the
        engine's own additions (the chain record), from any thread. Raises
        ExecutionNotFound."""
        self._handler.annotate(execution_id, change)

    def cancel_execution(self, execution_id: str) -> Future[Execution]:
        return self._commands.put(CancelExecution(execution_id))

    # -- driving by hand (tests, benchmarks) ----------------------------------------
    def run_once(self, now: datetime | None = None) -> float | None:
        """Apply pending commands and fire everything due at `now` (default: the clock);
        seconds until the next fire, None when nothing is scheduled."""
        if self._state == "stopped":
            raise EngineStopped("the scheduler has shut down")
        return self._loop.run_once(now)

    def wait_idle(self, timeout: float) -> bool:
        """True once no execution is queued or running and every run is recorded
        (False after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        if not self._pool.wait_idle(timeout):
            return False
        return self._recorder.flush(max(0.0, deadline - time.monotonic()))

    @property
    def arm_lead(self) -> float:
        """Seconds before its due time that the loop thread claims a fire and hands it to
        a worker, which then starts it on time (see engine/scheduling/loop.py)."""
        return self._loop.lead

    @arm_lead.setter
    def arm_lead(self, seconds: float) -> None:
        self._loop.lead = max(0.0, seconds)

    def running_execution_ids(self) -> list[str]:
        """Executions a worker holds right now (started or waiting for their due time);
        a run leaves this list once its worker has handed its outcome to the recorder."""
        return [item.execution.id for item in self._pool.running_items()]

    @property
    def node(self) -> NodeKeeper | None:
        """This engine's place among the nodes on the store (None: not a node)."""
        return self._node

    @property
    def executions_running(self) -> int:
        """Executions a worker has taken and not yet finished (read without a lock)."""
        return self._pool.running_count

    @property
    def worker_backlog(self) -> int:
        """Queued executions waiting for a free worker (read without a lock)."""
        return self._pool.backlog_count

    def live_output(self, execution_id: str) -> LiveOutput | None:
        """What a running execution has printed so far (see engine/running/live.py)."""
        return self._executor.live_output(execution_id)

    @property
    def scheduled_jobs(self) -> int:
        """Jobs currently on the heap (active, with a next fire time; with a load window,
        due within it)."""
        return len(self._timetable.jobs)

    def _post_chained(self, execution: Execution, job_ids: list[str]) -> None:
        if not self._commands.post_internal(RunChained(copy.copy(execution), job_ids)):
            log.warning(
                "execution %s ended after shutdown; its chained job(s) %s were not started",
                execution.id,
                ", ".join(job_ids),
            )

    def _post_retry(self, execution: Execution) -> None:
        if not self._commands.post_internal(ScheduleRetry(execution)):
            log.info("retry %s stays scheduled in the store for the next start", execution.id)
