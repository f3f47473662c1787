"""History retention: the service keeps execution history from growing without bound.

Two rules, enforced in the background on every store, in small batches:
- a job's `history_limit` keeps its newest N executions: finished ones older than the
  N-th newest are deleted (ties at that instant are kept, so never fewer than N);
- `CRONWELL_HISTORY_DAYS` deletes finished executions created more than that many days
  ago, whichever job they belong to.
Queued, running and scheduled executions are never deleted: the store's delete
re-checks the status in the same statement (`Store.delete_executions_before`).

`Retention` is one daemon thread. Engine events tell it which jobs have a limit (job
added / modified / removed) and which of those just recorded a finished execution;
it trims those soon after (a burst of runs is trimmed once), and every `interval`
seconds it sweeps by age and trims every limited job again (so a dropped event is
made good). Each batch is one store call of at most `batch` rows, with a short pause
between batches, so the engine's own writes are never held up for long.
`sweep()` does one whole pass synchronously (tests call it on a fake clock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from engine import events as ev
from engine.clock import Clock
from engine.events import Event, EventBus
from stores.base import Store

log = logging.getLogger(__name__)
#: rows one batch deletes at most
BATCH = 500
#: seconds between batches of one sweep
PAUSE = 0.01
#: seconds between full sweeps (age, and every limited job)
INTERVAL = 300.0
#: seconds a trim waits after the first finished execution, to take a burst at once
SETTLE = 1.0
#: events that record a finished execution of a job
_FINISHED = (ev.EXECUTION_EXECUTED, ev.EXECUTION_FAILED, ev.JOB_MISSED, ev.MAX_INSTANCES_REACHED)
_JOB_CHANGES = (ev.JOB_ADDED, ev.JOB_MODIFIED, ev.JOB_PAUSED, ev.JOB_RESUMED)


@dataclass(frozen=True, slots=True)
class Swept:
    """What one pass deleted."""

    by_age: int
    by_limit: int
    batches: int


class Retention:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        days: float | None = None,
        interval: float = INTERVAL,
        batch: int = BATCH,
        pause: float = PAUSE,
        settle: float = SETTLE,
    ) -> None:
        self._store = store
        self._clock = clock
        self._days = days
        self._interval = interval
        self._batch = max(1, batch)
        self._pause = pause
        self._settle = settle
        self._lock = threading.Lock()
        #: job id -> history_limit, for the jobs that have one
        self._limits: dict[str, int] = {}
        #: limited jobs with finished executions not trimmed yet
        self._dirty: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- wiring -----------------------------------------------------------------------------

    def attach(self, events: EventBus) -> None:
        """Hear about jobs and finished executions (before `start`, so none is missed)."""
        kinds = (*_JOB_CHANGES, ev.JOB_REMOVED, *_FINISHED)
        self._unsubscribe = events.subscribe(self._on_event, kinds)

    def start(self, *, loaded: bool = False) -> Retention:
        """Learn every stored job's limit (unless `learn` already saw every job: the
        engine's start-up load), then trim and sweep in the background."""
        if not loaded:
            self.load_limits()
        self._thread = threading.Thread(target=self._run, name="cronwell-retention", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._thread is not None:
            self._thread.join(timeout)

    def load_limits(self) -> None:
        """Read every stored job's limit (a page of records at a time)."""
        limits = {
            record["id"]: record["history_limit"]
            for page in self._store.job_records()
            for record in page
            if record.get("history_limit") is not None
        }
        with self._lock:
            self._limits = limits
            self._dirty = set(limits)

    def learn(self, record: Mapping[str, Any]) -> None:
        """One stored job's record, as the engine's start-up load reads it (a
        `JobObserver`): the service learns the limits from that pass instead of reading
        every job again; `start(loaded=True)` then skips `load_limits`."""
        limit = record.get("history_limit")
        if limit is not None:
            with self._lock:
                self._limits[record["id"]] = limit
                self._dirty.add(record["id"])

    # -- one pass ---------------------------------------------------------------------------

    def sweep(self) -> Swept:
        """Delete by age (when `days` is set) and trim every limited job, now."""
        with self._lock:
            self._dirty = set(self._limits)
        by_age, batches = self._by_age()
        by_limit, more = self._trim_dirty()
        return Swept(by_age, by_limit, batches + more)

    def _by_age(self) -> tuple[int, int]:
        if not self._days:
            return 0, 0
        cutoff = self._clock.now() - timedelta(days=self._days)
        return self._in_batches(partial(self._store.delete_executions_before, cutoff), "by age")

    def _trim_dirty(self) -> tuple[int, int]:
        with self._lock:
            jobs = {
                job_id: self._limits[job_id] for job_id in self._dirty if job_id in self._limits
            }
            self._dirty.clear()
        deleted = batches = 0
        for job_id, keep in jobs.items():
            try:
                newest = self._store.list_executions(job_id=job_id, limit=1, offset=keep - 1)
            except Exception as exc:  # the next pass tries again
                log.warning("retention: reading job %s's history failed: %s", job_id, exc)
                self._mark(job_id)
                continue
            if not newest:
                continue  # not more than `keep` executions yet
            count, used = self._in_batches(
                partial(self._store.delete_executions_before, newest[0].created_at, job_id=job_id),
                f"for job {job_id}",
            )
            deleted += count
            batches += used
        return deleted, batches

    def _in_batches(self, delete: Callable[..., int], what: str) -> tuple[int, int]:
        """Call `delete(limit=batch)` until it deletes less than a batch; (deleted, calls)."""
        total = calls = 0
        while not self._stop.is_set():
            try:
                count = delete(limit=self._batch)
            except Exception as exc:  # a store failure waits for the next pass
                log.warning("retention: deleting executions %s failed: %s", what, exc)
                break
            total += count
            calls += 1
            if count < self._batch:
                break
            self._stop.wait(self._pause)
        if total:
            log.info("retention: deleted %d finished execution(s) %s", total, what)
        return total, calls

    # -- the background thread ----------------------------------------------------------------

    def _run(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + self._interval
                else:
                    self._trim_dirty()
            except Exception:  # never let the thread die: log and keep going
                log.exception("retention pass failed")
            self._wake.wait(max(0.0, next_sweep - time.monotonic()))
            self._wake.clear()
            self._stop.wait(self._settle)  # let a burst of finished runs arrive

    def _on_event(self, event: Event) -> None:
        """On the event bus's thread: only bookkeeping, never a store call."""
        if event.kind in _FINISHED:
            with self._lock:
                if event.job_id not in self._limits:
                    return
                self._dirty.add(event.job_id)
            self._wake.set()
            return
        if event.kind == ev.JOB_REMOVED or event.job is None:
            with self._lock:
                self._limits.pop(event.job_id, None)
            return
        limit = event.job.history_limit
        with self._lock:
            if limit is None:
                self._limits.pop(event.job_id, None)
                return
            lowered = self._limits.get(event.job_id, limit + 1) > limit
            self._limits[event.job_id] = limit
            if lowered:
                self._dirty.add(event.job_id)
        if lowered:
            self._wake.set()

    def _mark(self, job_id: str) -> None:
        with self._lock:
            self._dirty.add(job_id)
