"""The bounded worker pool: N threads taking queued executions from a capped backlog.

The loop checks `room()` before it claims a fire, so a fire that finds the backlog full
is recorded as `skipped` instead of being queued; nothing waits unbounded and nothing
is dropped silently. The pool also keeps the per-job count of queued + running
executions that max_instances is checked against, and the registry that lets a queued
execution be withdrawn or a running one be asked to stop.

Threads start on the first submit (or `start()`), so a scheduler that never fires
starts no threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future

from engine.model import Execution, Job
from engine.running.cancel import CancelFlag

log = logging.getLogger(__name__)
#: seconds between re-checks while waiting for the pool to go idle
IDLE_CHECK = 0.05


class WorkItem:
    """One queued execution on its way to a worker."""

    __slots__ = (
        "_begun",
        "_finished",
        "_lock",
        "cancel",
        "cancel_reason",
        "execution",
        "job",
        "not_before",
        "waiters",
        "withdrawn",
    )

    def __init__(
        self, execution: Execution, job: Job | None = None, not_before: float = 0.0
    ) -> None:
        self.execution = execution
        #: the job when the loop already has it (manual runs); workers load it otherwise
        self.job = job
        #: the due timestamp: a fire armed ahead of time is started no earlier than this
        self.not_before = not_before
        self.cancel = CancelFlag()
        #: futures of cancel commands waiting for this execution's terminal status
        self.waiters: list[Future[Execution]] = []
        #: why the engine took this fire back before it started ("" when it did not)
        self.withdrawn = ""
        #: why the engine stopped it once running (overlap=replace); prefixed to its error
        self.cancel_reason = ""
        self._begun = False
        self._finished = False
        #: its own lock, not a shared one: ten workers finishing runs would contend
        self._lock = threading.Lock()

    def add_waiter(self, future: Future[Execution]) -> bool:
        """Resolve `future` with the terminal execution; False when already finished."""
        with self._lock:
            if self._finished:
                return False
            self.waiters.append(future)
            return True

    def begin(self) -> bool:
        """Called by the worker just before it runs the execution: False when the
        engine withdrew it first (then `withdrawn` says why)."""
        with self._lock:
            if self.withdrawn:
                return False
            self._begun = True
            return True

    def withdraw(self, reason: str) -> bool:
        """Stop this execution from starting; False when it already began."""
        with self._lock:
            if self._begun:
                return False
            self.withdrawn = reason
        self.cancel.set()  # wakes a worker holding it until its due time
        return True

    def claim_finish(self) -> bool:
        """True for the one caller allowed to record the terminal status (worker or
        shutdown), False for everyone after it."""
        with self._lock:
            if self._finished:
                return False
            self._finished = True
            return True


class WorkerPool:
    def __init__(self, size: int, backlog_limit: int, work: Callable[[WorkItem], None]) -> None:
        if size < 1 or backlog_limit < 1:
            raise ValueError("pool_size and backlog_limit must be at least 1")
        self.size = size
        self.backlog_limit = backlog_limit
        self._work = work
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._became_idle = threading.Condition(self._lock)
        #: appended under the lock; workers popleft without it (deque ops are atomic)
        self._backlog: deque[WorkItem] = deque()
        #: execution id -> item a worker took; workers set and delete their own entries
        self._running: dict[str, WorkItem] = {}
        #: job id -> queued + running executions (entries removed at zero); changed
        #: under the lock only: workers report what they finished in `_released`
        self._instances: dict[str, int] = {}
        self._released: deque[str] = deque()
        #: job id -> executions waiting for a run of their job to end, oldest first
        #: (overlap=queue holds one; a backfill its occurrences); each run of that job
        #: that ends moves the first of them to the backlog
        self._waiting: dict[str, deque[WorkItem]] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # -- the loop's side -------------------------------------------------------------
    @property
    def full_error(self) -> str:
        """The error of an execution skipped because the backlog was full."""
        return (
            f"skipped: the worker backlog is full ({self.backlog_limit} executions waiting "
            "for a worker); raise backlog_limit or pool_size"
        )

    @property
    def running_count(self) -> int:
        """Items workers hold (running, or armed and waiting for their due time)."""
        return len(self._running)

    @property
    def backlog_count(self) -> int:
        """Queued items no worker has taken yet."""
        return len(self._backlog)

    def due_waiting(self, now: float) -> int:
        """Queued items when the first is due by `now` (the workers are behind), else 0."""
        backlog = self._backlog
        try:
            first = backlog[0]
        except IndexError:  # empty, or a worker took the last one meanwhile
            return 0
        return len(backlog) if first.not_before <= now else 0

    def room(self) -> int:
        """How many more executions the backlog takes now."""
        return self.backlog_limit - len(self._backlog)

    def instances(self, job_id: str) -> int:
        """Queued + running executions of a job (what max_instances limits)."""
        if self._released:
            with self._lock:
                self._settle_locked()
        return self._instances.get(job_id, 0)

    def submit(self, items: Iterable[WorkItem]) -> int:
        """Queue items for the workers; returns how many were taken. Items beyond the
        backlog limit (the caller checked `room()`, so only after a race) are refused."""
        taken = 0
        with self._lock:
            if self._stopping:
                return 0
            if not self._threads:
                self._start_locked()
            for item in items:
                if len(self._backlog) >= self.backlog_limit:
                    break
                self._backlog.append(item)
                job_id = item.execution.job_id
                self._instances[job_id] = self._instances.get(job_id, 0) + 1
                taken += 1
            self._has_work.notify(taken)
        return taken

    def waiting(self, job_id: str) -> int:
        """How many executions of a job are held until runs of it end."""
        held = self._waiting.get(job_id)
        return len(held) if held else 0

    def hold(self, items: list[WorkItem], at_once: int = 0) -> list[WorkItem]:
        """Queue up to `at_once` of `items` (all of one job) now, less what of the job is
        already queued or running, and keep the rest in order: each run of the job
        that ends queues the next (overlap=queue holds one, a backfill runs its
        occurrences so). With nothing of the job in the pool, the first is queued at
        once even when `at_once` is 0. Returns the items refused (the pool is stopping),
        for the caller to record."""
        if not items:
            return []
        job_id = items[0].execution.job_id
        with self._lock:
            if self._stopping:
                return items
            self._settle_locked()
            active = self._instances.get(job_id, 0)
            now = max(at_once - active, 0 if active else 1)
            held = self._waiting.setdefault(job_id, deque())
            held.extend(items[now:])
            if not held:
                del self._waiting[job_id]
        first = items[:now]
        return first[self.submit(first) :]

    def active_items(self, job_id: str) -> list[WorkItem]:
        """The job's queued and running items (overlap=replace cancels them)."""
        with self._lock:
            backlog, running = self._items_of_locked(job_id)
        return [*backlog, *running]

    def take_queued(self, execution_id: str) -> WorkItem | None:
        """Withdraw a queued execution before a worker starts it."""
        with self._lock:
            for job_id, held in list(self._waiting.items()):
                for item in held:
                    if item.execution.id == execution_id:
                        held.remove(item)
                        if not held:
                            del self._waiting[job_id]
                        return item
            for item in list(self._backlog):  # a copy: workers pop while we look
                if item.execution.id == execution_id:
                    return item if self._unqueue_locked(item) else None
        return None

    def withdraw_job(
        self, job_id: str, reason: str, due_after: float | None = None
    ) -> list[WorkItem]:
        """Take back a job's executions that have not started (a pause or a removal
        reached them while they were armed or queued); with `due_after`, only fires
        armed ahead of a due time later than it.

        Queued ones leave the backlog and are returned for the caller to record; ones a
        worker holds until their due time are told to stop, and that worker records them.
        Costs nothing for a job with no execution in the pool.
        """

        def wanted(item: WorkItem) -> bool:
            return due_after is None or item.not_before > due_after

        with self._lock:
            backlog, running = self._items_of_locked(job_id)
            queued = [i for i in backlog if wanted(i) and self._unqueue_locked(i)]
            held = self._waiting.get(job_id, ())
            kept = deque(i for i in held if not wanted(i))
            queued.extend(i for i in held if wanted(i))
            if kept:
                self._waiting[job_id] = kept
            else:
                self._waiting.pop(job_id, None)
        for item in queued:
            item.withdrawn = reason
        for item in running:
            if wanted(item):
                item.withdraw(reason)
        return queued

    def refresh_job(self, job: Job) -> None:
        """Give a job's executions that have not started the job as just changed, so
        an armed fire runs with the new arguments (its trigger change applies from the
        next fire on)."""
        with self._lock:
            backlog, running = self._items_of_locked(job.id)
            held = self._waiting.get(job.id, ())
            for item in (*backlog, *running, *held):
                if item.job is not None:
                    item.job = job

    def _items_of_locked(self, job_id: str) -> tuple[list[WorkItem], list[WorkItem]]:
        """A job's items in the backlog and with workers (copies: workers pop and
        register meanwhile); no scan at all for a job with no execution in the pool."""
        self._settle_locked()
        if job_id not in self._instances:
            return [], []
        backlog = [i for i in list(self._backlog) if i.execution.job_id == job_id]
        running = [i for i in self._running.copy().values() if i.execution.job_id == job_id]
        return backlog, running

    def find_running(self, execution_id: str) -> WorkItem | None:
        return self._running.get(execution_id)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if not self._threads and not self._stopping:
                self._start_locked()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or running (within `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                self._settle_locked()
                if not self._instances and not self._waiting:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._became_idle.wait(min(left, IDLE_CHECK))

    def stop_intake(self) -> list[WorkItem]:
        """Refuse new work and hand back everything still queued (never started)."""
        queued: list[WorkItem] = []
        with self._lock:
            self._stopping = True
            while True:
                try:
                    item = self._backlog.popleft()  # workers may pop the last few too
                except IndexError:
                    break
                queued.append(item)
                self._release_locked(item.execution.job_id)
            for held in self._waiting.values():
                queued.extend(held)
            self._waiting.clear()
            self._has_work.notify_all()
            self._became_idle.notify_all()
        return queued

    def running_items(self) -> list[WorkItem]:
        return list(self._running.copy().values())

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the workers' side -----------------------------------------------------------
    def _start_locked(self) -> None:
        for number in range(self.size):
            thread = threading.Thread(
                target=self._work_forever, name=f"cronwell-worker-{number}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work_forever(self) -> None:
        """Take, run, repeat, without the pool's lock while there is work.

        Taking is one atomic `deque.popleft`, registering and releasing are one dict
        store and one deque append: with ten workers on short runs, a shared lock per
        run formed convoys under the GIL (every release handed the lock to a sleeping
        waiter, forcing a GIL hand-off on the next acquire). The lock is taken only to
        sleep when the backlog is empty.
        """
        backlog, running, released = self._backlog, self._running, self._released
        while True:
            try:
                item = backlog.popleft()
            except IndexError:
                if not self._wait_for_work():
                    return
                continue
            execution_id = item.execution.id
            running[execution_id] = item
            try:
                self._work(item)
            except BaseException:  # the work function records failures; this is a bug
                log.exception("worker crashed on execution %s", execution_id)
            del running[execution_id]
            released.append(item.execution.job_id)
            # after the release, so a `hold` that missed it has queued its item itself
            if self._waiting:  # one dict test per run while nothing is held
                self._promote(item.execution.job_id)

    def _promote(self, job_id: str) -> None:
        """A run of `job_id` ended: queue the execution that waited for it, if any."""
        with self._lock:
            held = self._waiting.get(job_id)
            if not held:
                return
            item = held.popleft()
            if not held:
                del self._waiting[job_id]
            self._backlog.append(item)
            self._instances[job_id] = self._instances.get(job_id, 0) + 1
            self._has_work.notify()

    def _wait_for_work(self) -> bool:
        """Sleep until the backlog has work; False when the pool is stopping."""
        with self._lock:
            while not self._backlog:
                self._became_idle.notify_all()  # a waiter re-checks the counts
                if self._stopping:
                    return False
                self._has_work.wait()
            return True

    def _unqueue_locked(self, item: WorkItem) -> bool:
        """Remove `item` from the backlog; False when a worker took it first."""
        try:
            self._backlog.remove(item)
        except ValueError:
            return False
        self._release_locked(item.execution.job_id)
        return True

    def _settle_locked(self) -> None:
        """Apply the releases workers reported since the last settle."""
        released = self._released
        while released:
            self._release_locked(released.popleft())

    def _release_locked(self, job_id: str) -> None:
        left = self._instances.get(job_id, 0) - 1
        if left > 0:
            self._instances[job_id] = left
        else:
            self._instances.pop(job_id, None)
