"""The recorder: one thread that writes what workers report, in batches.

A worker that starts or finishes an execution does not write the store itself: it
hands a snapshot to this thread through a `queue.SimpleQueue` (a C queue whose put
takes no Python-level lock) and goes on. The thread takes everything reported since
its last write and stores it with one `Store.record_progress` call: one lock and one
commit for many executions. Then, in order, it runs each finished execution's
follow-ups (events, retries, cancel waiters), so they see the stored state. Started
executions get their `execution_started` event here too, before the follow-ups of the
same batch: a run's events reach the bus in the order it lived them, and emitting costs
the worker nothing.

Why: ten worker threads each taking the store's lock three times per run formed lock
convoys under the GIL (a lock released to a sleeping waiter forces a GIL hand-off on
the next acquire): about five context switches per run and a fivefold slowdown on a
burst of short jobs. With the recorder, a worker's only shared lock is the pool's.

While a crowd of due fires waits for workers, the thread holds its batch back (up to
MAX_DEFER) for as long as the workers keep getting through the crowd: its writes
and follow-ups take the GIL from the starts (a third of a 10,000-fire burst's time),
and they cost the same later, once the starts are done. The running marks and
terminal records of such a crowd land that much later; one fire at a time never waits.
Only without a start journal (the scheduler calls `hold_back_while` then): with one, a running
mark not yet written is a run another machine could start again after a crash
(engine/running/journal.py), and holding marks back would widen that window.

Bounded: a worker that finds more than `limit` reports unwritten (a slow or failing
store) waits for the thread to catch up before it reports more. `flush` waits until
everything reported before it is written (`Scheduler.wait_idle`, shutdown).
"""

from __future__ import annotations

import copy
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from engine.events import EXECUTION_STARTED, EventBus
from engine.interfaces import SchedulerStore
from engine.model import Execution, Status
from engine.running.backoff import failure_text, is_transient, retry_store_call
from engine.running.batches import take_more
from engine.running.journal import StartJournal
from engine.running.wakes import ArmedWakes

log = logging.getLogger(__name__)
#: reports written per store call at most
MAX_BATCH = 512
#: seconds the thread waits after a first report for more to join its batch: at 2,000
#: fires/s (4,000 reports/s) about twenty join it, so the thread wakes twice per ten
#: runs, where 1 ms gave twice per two; the running mark and the events follow the
#: start by that much more
LINGER = 0.005
#: reports a worker may leave unwritten before it waits for the recorder
DEFAULT_LIMIT = 10_000
#: the same once batches may be held back in a crowd (two reports per run: room for a
#: crowd of 10,000 runs twice over); with a journal the limit bounds the crash window
HELD_LIMIT = 40_000
#: the longest the thread holds a batch back while workers get through a crowd of due
#: fires (see the module docstring)
MAX_DEFER = 0.5
#: what writing one report is taken to cost, to judge whether a write fits before the
#: next armed fire is due (measured 7-14 us a report on the memory store; the GIL is
#: what matters, and SQLite releases it while it works)
WRITE_COST = 15e-6


@dataclass(slots=True)
class Finished:
    """A terminal execution to write, and what to do once it is written."""

    execution: Execution
    after: Callable[[], None]


@dataclass(slots=True)
class _Barrier:
    """Set once every report put before it is written."""

    done: threading.Event = field(default_factory=threading.Event)


_Report = Execution | Finished | _Barrier | None


class Recorder:
    def __init__(
        self,
        store: SchedulerStore,
        stopping: threading.Event,
        limit: int = DEFAULT_LIMIT,
        journal: StartJournal | None = None,
        events: EventBus | None = None,
    ) -> None:
        self._store = store
        #: told which starts are recorded, so it can forget them
        self._journal = journal
        self._events = events
        self._stopping = stopping
        self._limit = limit
        self._queue: queue.SimpleQueue[_Report] = queue.SimpleQueue()
        #: reports put so far (next() on a count is atomic: workers take no lock)
        self._put = itertools.count(1)
        #: reports written so far; only the recorder thread writes it
        self._written = 0
        self._caught_up = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False
        #: how many due fires wait for a worker (0 when the workers keep up); None: never
        #: hold a batch back (see `hold_back_while`)
        self.behind: Callable[[], int] | None = None
        #: armed fires the thread steps aside for before a write (running/wakes.py)
        self.wakes: ArmedWakes | None = None

    def hold_back_while(self, behind: Callable[[], int]) -> None:
        """Hold batches back while `behind()` (due fires waiting for a worker) shrinks:
        for an engine without a start journal (module docstring)."""
        self.behind = behind
        self._limit = max(self._limit, HELD_LIMIT)

    # -- the workers' side -----------------------------------------------------------
    def started(self, execution: Execution) -> None:
        """Store `execution` as running (its current state: see Executor.__call__)."""
        self._report(execution)

    def finished(self, execution: Execution, after: Callable[[], None]) -> None:
        """Store `execution` as terminal (with its job's counters), then call `after`."""
        self._report(Finished(execution, after))

    def _report(self, report: Execution | Finished) -> None:
        if self._stopped:  # a straggler after shutdown: written by its own thread
            self._write([report])
            return
        if self._thread is None:
            self.start()
        number = next(self._put)
        if number - self._written > self._limit:
            self._wait_for_room(number)
        self._queue.put(report)

    def _wait_for_room(self, number: int) -> None:
        """Block until the thread has written all but half the limit before `number`."""
        with self._caught_up:
            while number - self._written > self._limit // 2 and not self._stopping.is_set():
                self._caught_up.wait(0.5)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cronwell-recorder", daemon=True
                )
                self._thread.start()

    def flush(self, timeout: float) -> bool:
        """True once everything reported before this call is written (within timeout)."""
        if self._thread is None or self._stopped:
            return True
        barrier = _Barrier()
        self._queue.put(barrier)
        return barrier.done.wait(timeout)

    def stop(self, timeout: float) -> None:
        """Write everything reported so far, then end the thread."""
        if self._thread is None or self._stopped:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._stopped = True

    # -- the recorder thread ---------------------------------------------------------
    def _run(self) -> None:
        reports = self._queue
        while True:
            batch = [reports.get()]
            self._linger()
            batch = take_more(reports, batch, MAX_BATCH)
            if self.wakes is not None:
                self.wakes.step_aside(len(batch) * WRITE_COST)
            if not self._write(batch):
                return

    def _linger(self) -> None:
        """Wait for more reports to join the batch: LINGER, then on while workers get
        through a crowd of due fires (module docstring); not at all when a full batch
        is already waiting."""
        reports = self._queue
        if reports.qsize() >= MAX_BATCH:
            return
        time.sleep(LINGER)
        behind = self.behind
        waiting = behind() if behind is not None else 0
        if not waiting:
            return
        deadline = time.monotonic() + MAX_DEFER
        room = self._limit // 2
        while reports.qsize() < room and time.monotonic() < deadline:
            time.sleep(LINGER)
            still = behind() if behind is not None else 0
            if not still or still >= waiting:  # done, or the workers are stuck: write
                return
            waiting = still

    def _one_by_one(
        self, started: list[Execution], finished: list[Finished], exc: Exception
    ) -> None:
        """After a bug in a batch write (not a StoreError): each execution on its own,
        so one record the store cannot take does not lose the others. A terminal one
        that fails again is recorded `failed` with the batch's error; nothing is
        retried and nothing logged again (the batch's failure was, with its traceback)."""
        error = f"recording this execution failed: {failure_text(exc)}"
        recorded: list[str] = []
        for execution in started:
            with suppress(Exception):
                self._store.update_execution(execution)
                recorded.append(execution.id)
        for report in finished:
            execution = report.execution
            try:
                self._store.finish_execution(execution)
            except Exception:
                execution.status, execution.error = Status.FAILED, error
                execution.return_value = None
                with suppress(Exception):
                    self._store.finish_execution(execution)
                    recorded.append(execution.id)
            else:
                recorded.append(execution.id)
        if self._journal is not None:
            self._journal.recorded(recorded)

    def _write(self, batch: list[_Report]) -> bool:
        """Store one batch and run its follow-ups; False when told to stop."""
        started: list[Execution] = []
        finished: list[Finished] = []
        barriers: list[_Barrier] = []
        stop = False
        for report in batch:
            if isinstance(report, Execution):
                started.append(report)
            elif isinstance(report, Finished):
                finished.append(report)
            elif isinstance(report, _Barrier):
                barriers.append(report)
            else:
                stop = True
        reports = len(started) + len(finished)
        recorded_ids = [e.id for e in started]
        events = self._events
        announce = (
            [e for e in started if events.wants(EXECUTION_STARTED, e.job_id)]
            if events is not None and events.wants(EXECUTION_STARTED)
            else []
        )
        if finished and started:  # a run that started and ended within one batch
            done_ids = {f.execution.id for f in finished}
            started = [e for e in started if e.id not in done_ids]
        if started or finished:
            try:
                retry_store_call(
                    self._stopping,
                    self._store.record_progress,
                    started,
                    [f.execution for f in finished],
                )
                if self._journal is not None:
                    self._journal.recorded([*recorded_ids, *(f.execution.id for f in finished)])
            except Exception as exc:
                if is_transient(exc):  # the engine is stopping: the next start recovers them
                    log.error(
                        "could not record %d started and %d finished execution(s) (%s)",
                        len(started),
                        len(finished),
                        exc,
                    )
                else:
                    log.error(
                        "recording %d started and %d finished execution(s) failed with an "
                        "unexpected error; writing them one by one",
                        len(started),
                        len(finished),
                        exc_info=exc,
                    )
                    self._one_by_one(started, finished, exc)
        for execution in announce:
            assert events is not None and execution.started_at is not None
            events.emit(
                EXECUTION_STARTED,
                execution.job_id,
                execution.started_at,
                execution=_as_started(execution),
                fresh=True,  # the snapshot is the event's own: no second copy
            )
        for report in finished:
            try:
                report.after()
            except Exception:
                log.exception("follow-up of execution %s failed", report.execution.id)
        self._written += reports
        with self._caught_up:
            self._caught_up.notify_all()
        for barrier in barriers:
            barrier.done.set()
        return not stop


def _as_started(execution: Execution) -> Execution:
    """A snapshot of `execution` as it was when it started: the worker may already have
    ended it (the recorder holds the live object, see Executor.__call__)."""
    snapshot = copy.copy(execution)
    snapshot.status = Status.RUNNING
    snapshot.completed_at = None
    snapshot.output = ""
    snapshot.error = ""
    snapshot.return_value = None
    snapshot.exit_code = None
    return snapshot
