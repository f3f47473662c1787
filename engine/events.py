"""The event bus: listeners hear about jobs and executions without slowing the engine.

Emitters (the loop thread, the recorder) only put an `Event` on a bounded queue; one
delivery thread calls the listeners. A slow or stuck listener therefore delays other
listeners, never a fire. When the queue is full the event is dropped, counted in
`overflowed` and logged (the first time and every 1,000th time after), so emitting never
blocks. With no listener for a kind, emitting it costs one set lookup.

A listener may say which jobs it wants with an `Interest` it keeps changing (the SSE hub:
the jobs its clients watch, every job, or none). The emitter asks it before it copies
anything, so an event no listener takes costs a set lookup and an attribute read: a
hub with no client, or whose clients all watch other jobs, costs a fire nothing.

The queue is a `queue.SimpleQueue` (its put takes no Python-level lock, so an emitter
never contends with the delivery thread), bounded by counting; the delivery thread
lingers a moment after each wake so a busy second costs hundreds of wakeups, not one
per event (under API load the old per-event wake was ~4 context switches per request).

Kinds:
    job_added, job_modified, job_removed, job_paused, job_resumed
    execution_submitted   a fire or manual run was queued for a worker
    execution_started     a worker started it (emitted by the recorder thread, after
                          the fire's execution_submitted and before its end)
    execution_executed    an execution completed
    execution_failed      an execution ended failed, timeout, cancelled or abandoned (see
                          `status`; abandoned: recovery or a sweep marked it so)
    job_missed            a fire never ran: too late (missed) or no room in the backlog
    max_instances_reached a fire was skipped because max_instances were running
"""

from __future__ import annotations

import copy
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from engine.errors import InvalidInput
from engine.model import Execution, Job
from engine.running.batches import take_batch

log = logging.getLogger(__name__)

JOB_ADDED = "job_added"
JOB_MODIFIED = "job_modified"
JOB_REMOVED = "job_removed"
JOB_PAUSED = "job_paused"
JOB_RESUMED = "job_resumed"
EXECUTION_SUBMITTED = "execution_submitted"
EXECUTION_STARTED = "execution_started"
EXECUTION_EXECUTED = "execution_executed"
EXECUTION_FAILED = "execution_failed"
JOB_MISSED = "job_missed"
MAX_INSTANCES_REACHED = "max_instances_reached"

EVENT_KINDS = frozenset(
    {
        JOB_ADDED,
        JOB_MODIFIED,
        JOB_REMOVED,
        JOB_PAUSED,
        JOB_RESUMED,
        EXECUTION_SUBMITTED,
        EXECUTION_STARTED,
        EXECUTION_EXECUTED,
        EXECUTION_FAILED,
        JOB_MISSED,
        MAX_INSTANCES_REACHED,
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    job_id: str
    #: engine clock time when the event was emitted
    at: datetime
    #: a snapshot taken at emit time (execution events)
    execution: Execution | None = None
    #: a snapshot taken at emit time (job events; for job_removed, the job as it was)
    job: Job | None = None


Listener = Callable[[Event], object]


class Interest:
    """Which jobs' events a listener takes now: every job's, only those of some jobs, or
    none. The listener changes it with `set` from any thread; emitters read it without
    a lock, which is safe because `set` replaces one tuple (an atomic store)."""

    __slots__ = ("_state",)

    def __init__(self, everything: bool = True, jobs: Iterable[str] = ()) -> None:
        self._state: tuple[bool, frozenset[str]] = (everything, frozenset(jobs))

    def set(self, everything: bool, jobs: Iterable[str] = ()) -> None:
        self._state = (everything, frozenset(jobs))

    @property
    def everything(self) -> bool:
        return self._state[0]

    @property
    def jobs(self) -> frozenset[str]:
        return self._state[1]

    def takes(self, job_id: str | None) -> bool:
        """Whether an event of `job_id` is wanted (None: of any job at all)."""
        everything, jobs = self._state
        if everything:
            return True
        return bool(jobs) if job_id is None else job_id in jobs


#: seconds the delivery thread waits after a wake for more events to join the batch
LINGER = 0.002
#: events delivered per wake at most
BATCH_LIMIT = 1000
_STOP = object()


class EventBus:
    """Bounded, non-blocking fan-out of engine events to subscribed callables."""

    def __init__(self, queue_size: int = 10_000) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._queue_size = queue_size
        #: events queued so far (next() on a count is atomic: emitters take no lock)
        self._queued = itertools.count(1)
        self._lock = threading.Lock()
        #: (listener, kinds or None for all, its Interest or None for every job), copied
        #: on write so delivery never locks
        self._listeners: tuple[tuple[Listener, frozenset[str] | None, Interest | None], ...] = ()
        #: kinds some listener takes for every job
        self._wanted: frozenset[str] = frozenset()
        #: (kinds or None, interest) of the listeners that choose their jobs
        self._narrow: tuple[tuple[frozenset[str] | None, Interest], ...] = ()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.overflowed = 0
        self.delivered = 0

    def subscribe(
        self,
        callback: Listener,
        kinds: Iterable[str] | None = None,
        interest: Interest | None = None,
    ) -> Callable[[], None]:
        """Call `callback(event)` for events of `kinds` (all when None) of the jobs
        `interest` takes when the event is emitted and again when it is delivered (every
        job when None); returns unsubscribe."""
        wanted = None if kinds is None else frozenset(kinds)
        if wanted is not None and not wanted <= EVENT_KINDS:
            unknown = ", ".join(sorted(wanted - EVENT_KINDS))
            raise InvalidInput(f"unknown event kind(s): {unknown}")
        entry = (callback, wanted, interest)
        with self._lock:
            self._listeners = (*self._listeners, entry)
            self._recompute_wanted()
            self._ensure_thread()

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(e for e in self._listeners if e is not entry)
                self._recompute_wanted()

        return unsubscribe

    def wants(self, kind: str, job_id: str | None = None) -> bool:
        """True when some listener would receive `kind` for `job_id` (None: for some
        job); lets emitters skip building what they would emit."""
        if kind in self._wanted:
            return True
        for kinds, interest in self._narrow:
            if (kinds is None or kind in kinds) and interest.takes(job_id):
                return True
        return False

    def emit(
        self,
        kind: str,
        job_id: str,
        at: datetime,
        *,
        execution: Execution | None = None,
        job: Job | None = None,
        fresh: bool = False,
    ) -> None:
        """Queue an event for delivery; never blocks, drops (and counts) on overflow.

        The execution and job are copied (the caller goes on changing them) unless
        `fresh` says they are already copies nobody else holds."""
        if kind not in self._wanted:
            for kinds, interest in self._narrow:
                if (kinds is None or kind in kinds) and interest.takes(job_id):
                    break
            else:
                return
        if not fresh:
            execution = copy.copy(execution) if execution is not None else None
            job = copy.copy(job) if job is not None else None
        event = Event(kind, job_id, at, execution=execution, job=job)
        if next(self._queued) - self.delivered - self.overflowed <= self._queue_size:
            self._queue.put(event)
        else:
            self.overflowed += 1
            if self.overflowed % 1000 == 1:
                log.warning(
                    "event queue full: %d event(s) dropped so far (a listener is too slow)",
                    self.overflowed,
                )

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to `timeout`), then stop the delivery thread."""
        with self._lock:
            self._closed = True
            self._wanted = frozenset()
            self._narrow = ()
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("event delivery did not drain within %.1f s; stopping anyway", timeout)

    def _recompute_wanted(self) -> None:
        if self._closed:
            return
        wanted: set[str] = set()
        narrow: list[tuple[frozenset[str] | None, Interest]] = []
        for _, kinds, interest in self._listeners:
            if interest is not None:
                narrow.append((kinds, interest))
            else:
                wanted |= EVENT_KINDS if kinds is None else kinds
        self._wanted = frozenset(wanted)
        self._narrow = tuple(narrow)

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(
                target=self._deliver_forever, name="cronwell-events", daemon=True
            )
            self._thread.start()

    def _deliver_forever(self) -> None:
        while True:
            for item in take_batch(self._queue, LINGER, BATCH_LIMIT):
                if item is _STOP:
                    return
                assert isinstance(item, Event)
                self._deliver(item)

    def _deliver(self, event: Event) -> None:
        for callback, kinds, interest in self._listeners:
            if kinds is not None and event.kind not in kinds:
                continue
            if interest is not None and not interest.takes(event.job_id):
                continue
            try:
                callback(event)
            except Exception:
                log.exception("event listener %r failed on %s", callback, event.kind)
        self.delivered += 1
