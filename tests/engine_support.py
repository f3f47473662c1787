"""Shared pieces for the engine tests: trigger shorthands, job builders, a recording
runner, and a Harness that drives a Scheduler on a fake clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.interfaces import Outcome, RunRequest
from engine.model import Job, JobKind, Status
from engine.triggers import DateTrigger, IntervalTrigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def every(seconds: float, start: datetime = T0) -> IntervalTrigger:
    """Fires at start + k * seconds."""
    return IntervalTrigger(seconds=seconds, start_date=start)


def date_at(when: datetime) -> DateTrigger:
    """Fires once at `when`."""
    return DateTrigger(when)


def make_job(job_id: str, trigger: Any, **fields: Any) -> Job:
    return Job(
        id=job_id,
        name=fields.pop("name", f"job {job_id}"),
        kind=JobKind.CLASS,
        target="tests.fake.Job",
        trigger=trigger,
        **fields,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.001)
    return predicate()


class HandClock:
    """A timestamp source the test sets by hand (`clock.now += 0.5`)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A runner that records each request; `behave` decides each outcome."""

    def __init__(self, behave: Callable[[RunRequest], Outcome] | None = None) -> None:
        self.requests: list[RunRequest] = []
        self.started = threading.Event()
        self._lock = threading.Lock()
        self._behave = behave or (lambda request: Outcome(Status.COMPLETED, output="ok\n"))

    def __call__(self, request: RunRequest) -> Outcome:
        with self._lock:
            self.requests.append(request)
        self.started.set()
        return self._behave(request)

    @property
    def job_ids(self) -> list[str]:
        with self._lock:
            return [r.job.id for r in self.requests]


def wait_until_cancelled(request: RunRequest) -> Outcome:
    """A well-behaved long run: stops when the engine sets the cancel flag."""
    if request.cancel.wait(10):
        return Outcome(Status.CANCELLED, output="stopped\n", error="cancelled")
    return Outcome(Status.COMPLETED)


class Harness:
    """A Scheduler on a FakeClock and a MemoryStore, driven by `at()` steps.

    The clock starts one second before T0, so jobs added first are not due yet.
    """

    def __init__(self, runner: Any = None, store: Any = None, **options: Any) -> None:
        from engine.clock import FakeClock
        from engine.scheduler import Scheduler
        from stores.memory import MemoryStore

        self.clock = FakeClock(T0 - timedelta(seconds=1))
        self.store = store if store is not None else MemoryStore()
        self.runner = runner if runner is not None else Recorder()
        self.scheduler = Scheduler(self.store, self.runner, clock=self.clock, **options)

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.scheduler.shutdown(timeout=5)

    def at(self, seconds: float) -> float | None:
        """Move the clock to T0 + seconds and run one step there."""
        now = T0 + timedelta(seconds=seconds)
        self.clock.set(now)
        return self.scheduler.run_once(now)

    def do(self, future: Any) -> Any:
        """Apply a command now and return its result (or raise its error)."""
        self.scheduler.run_once(self.clock.now())
        return future.result(timeout=5)

    def add(self, job: Job) -> Job:
        return self.do(self.scheduler.add_job(job))  # type: ignore[no-any-return]

    def settle(self) -> None:
        assert self.scheduler.wait_idle(5), "executions did not finish"

    def executions(self, job_id: str | None = None) -> list[Any]:
        """Executions of a job, oldest first."""
        return list(reversed(self.store.list_executions(job_id=job_id, limit=10_000)))

    def statuses(self, job_id: str | None = None) -> list[str]:
        return [str(e.status) for e in self.executions(job_id)]
