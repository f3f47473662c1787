"""What a worker does with one queued execution, and how every run is recorded.

Run: load the job (unless the loop handed it over, as it does for fires), mark the
execution `running`, call the runner with a `RunRequest`, then `record` the Outcome. A
runner that raises anyway becomes `failed` with the traceback. Before the run starts,
its start is made crash-proof, so that after a crash an execution still `queued`
certainly never started and recovery may run it again without running anything twice:
with a start journal (the service's, engine/running/journal.py) the worker appends the
id there, a few microseconds; without one, on a durable store, it writes the running
mark to the store itself. Every other write (the running mark, the terminal record)
goes to the recorder thread (engine/running/recorder.py), which writes them in
batches. A node's start that its lapsed lease makes doubtful (engine/running/fence.py)
is written first, by the store's conditional write, and not made at all when another
node took the run over meanwhile. `record` is also how the loop and shutdown end executions that never ran
(cancelled while queued, cancelled at shutdown), so every path writes a terminal
status the same way, once (`WorkItem.claim_finish`).

After a failed or timed-out run with retries left, the retry is stored at once as a
`scheduled` execution and handed to the loop (`schedule_retry`), which puts it on the
heap; a retry posted after shutdown stays `scheduled` and is reloaded on the next start.
A run that ends completed, or failed / timed out with no retry left, hands the jobs its
job's on_success / on_failure name to the loop (`run_chained`) the same way.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from engine import events as ev
from engine.clock import Clock
from engine.errors import JobNotFound
from engine.events import EventBus
from engine.interfaces import JobRunner, Outcome, RunObserver, RunRequest, SchedulerStore
from engine.model import Execution, Job, Status
from engine.records import retry_of
from engine.running.backoff import retry_store_call
from engine.running.fence import StartFence, start_fenced
from engine.running.journal import StartJournal
from engine.running.live import LiveOutput
from engine.running.pool import WorkItem
from engine.running.recorder import Recorder
from engine.running.wakes import ArmedWakes
from engine.scheduling.chains import targets_after
from engine.scheduling.policy import retry_delay, should_retry

log = logging.getLogger(__name__)
JOB_GONE = "the job was removed before this execution started"
CANCELLED_BEFORE_START = "cancelled before it started"
SHUT_DOWN_BEFORE_START = "cronwell shut down before this execution started"
STORE_FAILED_BEFORE_START = "the store failed before this execution could start"
OUTCOME_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.TIMEOUT, Status.CANCELLED})
_EVENT_OF = {
    Status.COMPLETED: ev.EXECUTION_EXECUTED,
    Status.FAILED: ev.EXECUTION_FAILED,
    Status.TIMEOUT: ev.EXECUTION_FAILED,
    Status.CANCELLED: ev.EXECUTION_FAILED,
    Status.SKIPPED: ev.JOB_MISSED,
    Status.MISSED: ev.JOB_MISSED,
}


class Executor:
    def __init__(
        self,
        store: SchedulerStore,
        runner: JobRunner,
        clock: Clock,
        events: EventBus,
        *,
        output_cap: int,
        script_roots: tuple[Path, ...],
        services: Any,
        schedule_retry: Callable[[Execution], object],
        stopping: threading.Event,
        recorder: Recorder,
        node: str | None = None,
        journal: StartJournal | None = None,
        observer: RunObserver | None = None,
        run_chained: Callable[[Execution, list[str]], object] | None = None,
        fence: StartFence | None = None,
        wakes: ArmedWakes | None = None,
    ) -> None:
        #: where each sleep until an armed fire's due time is registered (wakes.py)
        self._wakes = wakes
        #: a node's: doubtful starts go through the store (None: not a node)
        self._fence = fence
        self._store = store
        self._node = node
        self._observer = observer
        self._runner = runner
        self._clock = clock
        self._events = events
        self._output_cap = output_cap
        self._script_roots = script_roots
        self._services = services
        self._schedule_retry = schedule_retry
        self._stopping = stopping
        self._recorder = recorder
        self._journal = journal
        #: execution id -> output so far, from its start until its terminal record is
        #: written (the worker adds, the recorder thread's follow-up removes; dict
        #: operations are atomic, so neither takes a lock)
        self._live: dict[str, LiveOutput] = {}
        #: starts the jobs a finished run's on_success / on_failure name (the loop's)
        self._run_chained = run_chained

    def live_output(self, execution_id: str) -> LiveOutput | None:
        """The output so far of a running execution; None when it is not running here
        (not started, or ended and recorded: the store has its output then)."""
        return self._live.get(execution_id)

    def __call__(self, item: WorkItem) -> None:
        """Run one execution to its terminal status (the pool's work function)."""
        wakes = self._wakes
        if wakes is None:
            self._run(item, None)
            return
        # its start is expected at its due time until the runner says it began: the
        # service's event loop gives way meanwhile (wakes.py)
        start = wakes.expect_start(item.not_before)
        try:
            self._run(item, partial(wakes.started, start))
        finally:
            wakes.started(start)

    def _run(self, item: WorkItem, started: Callable[[], None] | None) -> None:
        execution = item.execution
        if item.cancel.is_set() or self._wait_until_due(item) or not item.begin():
            error = item.withdrawn or CANCELLED_BEFORE_START
            self.record(item, Outcome(Status.CANCELLED, error=error), deferred=True)
            return
        job = item.job  # read after the wait: a modify meanwhile may have refreshed it
        try:
            if job is None:
                job = retry_store_call(self._stopping, self._store.get_job, execution.job_id)
        except JobNotFound:
            self.record(item, Outcome(Status.CANCELLED, error=JOB_GONE), deferred=True)
            return
        except Exception as exc:  # the store gave up (shutting down): never left queued
            error = f"{STORE_FAILED_BEFORE_START}: {exc}"
            self.record(item, Outcome(Status.FAILED, error=error), deferred=True)
            return
        execution.status = Status.RUNNING
        execution.started_at = self._clock.now()
        fence = self._fence
        fenced = fence is not None and (  # a doubtful start (fence.py), tested inline
            self._clock.timestamp() > fence.stale_after
            or (fence.lapsed and execution.created_at.timestamp() <= fence.suspect_until)
        )
        if fenced and not self._start_fenced(item):
            return
        if self._journal is not None:
            self._journal.started(execution.id)  # before the run: see journal.py
        elif self._store.durable and not fenced:
            # no journal: write-ahead to the store itself, so after a crash `queued`
            # still means "never started" (one store transaction per run)
            try:
                retry_store_call(self._stopping, self._store.update_execution, execution)
            except Exception as exc:
                error = f"{STORE_FAILED_BEFORE_START}: its start could not be recorded ({exc})"
                self.record(item, Outcome(Status.FAILED, error=error), deferred=True)
                return
        if self._journal is not None or not self._store.durable:
            # the object itself, not a copy (a copy.copy here was 40% of a no-op run): if
            # the recorder reads it after the run already ended, it writes the newer
            # state, and the terminal report that follows it in the same queue writes it
            # in full
            self._recorder.started(execution)
        live = self._live[execution.id] = LiveOutput(self._output_cap)
        request = RunRequest(
            job=job,
            execution=execution,
            cancel=item.cancel,
            timeout=job.timeout,
            output_cap=self._output_cap,
            script_roots=self._script_roots,
            services=self._services,
            live=live,
            started=started,
        )
        try:
            outcome = self._runner(request)
        except BaseException as exc:  # SystemExit from a job class too: the worker must survive
            # the traceback is the service's own: it goes to the log, not the record
            log.error("runner raised for execution %s", execution.id, exc_info=exc)
            outcome = Outcome(
                Status.FAILED,
                error=f"the runner raised {type(exc).__name__}: {exc} (traceback in the log)",
            )
        live.finished = True
        if outcome.status not in OUTCOME_STATUSES:
            outcome = Outcome(
                Status.FAILED,
                output=outcome.output,
                error=f"runner returned status {outcome.status!s}, not a final one",
            )
        self.record(item, outcome, job, deferred=True)

    def _start_fenced(self, item: WorkItem) -> bool:
        """Start a run this node's lease may have lapsed under only if the store says
        it is still this node's (engine/running/fence.py); else let it go unrecorded
        here (its record is the other node's) and settle what waits for it."""
        assert self._fence is not None
        execution = item.execution
        try:
            if start_fenced(self._store, self._fence, self._stopping, execution):
                return True
        except Exception as exc:  # the store gave up (shutting down): never left queued
            error = f"{STORE_FAILED_BEFORE_START}: its start could not be checked ({exc})"
            self.record(item, Outcome(Status.FAILED, error=error), deferred=True)
            return False
        execution.status, execution.started_at = Status.QUEUED, None
        try:
            stored = self._store.get_execution(execution.id)
        except Exception:  # gone, or the store failed: what waits gets what we know
            stored = execution
        log.warning(
            "execution %s was not started: this node's lease may have lapsed and the "
            "store has it %s on node %s",
            execution.id,
            stored.status,
            stored.node,
        )
        if item.claim_finish():  # nothing of this node records it any more
            for waiter in item.waiters:
                if not waiter.done():
                    waiter.set_result(_snapshot(stored))
        return False

    def _wait_until_due(self, item: WorkItem) -> bool:
        """Sleep until an armed fire is due; True when it was cancelled meanwhile."""
        delay = item.not_before - self._clock.timestamp()
        if delay <= 0:
            return False
        wakes = self._wakes
        if wakes is None:
            return item.cancel.sleep(delay)
        token = wakes.sleeping(item.not_before)
        try:
            return item.cancel.sleep(delay)
        finally:
            wakes.woke(token)

    def record(
        self, item: WorkItem, outcome: Outcome, job: Job | None = None, *, deferred: bool = False
    ) -> bool:
        """Write the terminal status once; False when someone else already did.

        deferred=True hands the write to the recorder thread (worker threads, and any
        execution whose `running` mark may still be on its way there, so the two land
        in order); otherwise it is written before this returns (the loop, shutdown).
        Events, a retry and cancel waiters follow the write either way.
        """
        if not item.claim_finish():
            return False
        execution = item.execution
        now = self._clock.now()
        execution.status = outcome.status
        execution.completed_at = now
        execution.output = execution.output + outcome.output  # keeps a coalescing note
        execution.error = outcome.error
        if item.cancel_reason and outcome.status is Status.CANCELLED:
            execution.error = (
                f"{item.cancel_reason} ({outcome.error})" if outcome.error else item.cancel_reason
            )
        execution.return_value = outcome.return_value
        execution.exit_code = outcome.exit_code

        # a partial, not a closure: six cells and a function per run cost four times as much
        after = partial(self._after, item, outcome, job, now)
        if deferred:
            self._recorder.finished(execution, after)
            return True
        try:
            retry_store_call(self._stopping, self._store.finish_execution, execution)
        except Exception:
            log.exception("could not record execution %s as %s", execution.id, outcome.status)
        after()
        return True

    def _after(self, item: WorkItem, outcome: Outcome, job: Job | None, now: datetime) -> None:
        """What follows a terminal record once it is written: events, the observer, a
        retry, chained jobs, cancel waiters."""
        execution = item.execution
        self._live.pop(execution.id, None)  # the store has the whole output now
        if self._observer is not None and outcome.status in OUTCOME_STATUSES:
            try:
                self._observer.ended(execution)
            except Exception:
                log.exception("run observer failed on execution %s", execution.id)
        self._events.emit(_EVENT_OF[outcome.status], execution.job_id, now, execution=execution)
        retrying = job is not None and should_retry(outcome.status, execution.attempt, job.retries)
        if retrying and job is not None:
            self._retry(execution, job)
        if job is not None and (job.on_success or job.on_failure):
            chained = targets_after(job, outcome.status, retrying)
            if chained and self._run_chained is not None:
                self._run_chained(execution, chained)
        for waiter in item.waiters:
            if not waiter.done():
                waiter.set_result(_snapshot(execution))

    def _retry(self, failed: Execution, job: Job) -> None:
        now = self._clock.now()
        delay = retry_delay(job.retry_delay, job.retry_backoff, failed.attempt)
        retry = retry_of(failed, now, now + timedelta(seconds=delay), node=self._node)
        try:
            retry_store_call(self._stopping, self._store.add_execution, retry)
        except Exception:
            log.exception("could not store the retry of execution %s", failed.id)
            return
        self._schedule_retry(retry)


def _snapshot(execution: Execution) -> Execution:
    """A copy for another thread, which may mutate it freely."""
    return copy.copy(execution)
