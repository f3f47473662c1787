"""The loop thread on the real clock: it wakes for earlier work and never waits on
listeners. (That it never spins while idle is a figure: `python -m bench.idle`.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from engine.events import Event
from engine.interfaces import Outcome, RunRequest
from engine.model import Status
from engine.scheduler import Scheduler
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, Recorder, date_at, make_job, wait_for


@pytest.fixture
def live() -> Iterator[tuple[Scheduler, Recorder]]:
    runner = Recorder()
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.start()
    yield scheduler, runner
    scheduler.shutdown(timeout=5)


def soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_moving_a_job_earlier_wakes_the_sleeping_loop(live: tuple[Scheduler, Recorder]) -> None:
    scheduler, runner = live
    job = scheduler.add_job(make_job("far", date_at(soon(60)))).result(timeout=5)
    assert job.next_run_time is not None
    time.sleep(0.05)  # the loop is now asleep until the job is due, 60 s away
    started = time.monotonic()
    scheduler.modify_job("far", trigger=date_at(soon(0.01))).result(timeout=5)
    assert runner.started.wait(1.0)
    assert time.monotonic() - started < 1.0
    assert scheduler.wait_idle(5)


def test_an_earlier_job_added_later_fires_first(live: tuple[Scheduler, Recorder]) -> None:
    scheduler, runner = live
    scheduler.add_job(make_job("far", date_at(soon(60)))).result(timeout=5)
    time.sleep(0.02)
    scheduler.add_job(make_job("near", date_at(soon(0.05)))).result(timeout=5)
    assert runner.started.wait(1.0)
    assert runner.job_ids == ["near"]


def test_run_now_with_the_loop_thread(live: tuple[Scheduler, Recorder]) -> None:
    scheduler, runner = live
    scheduler.add_job(make_job("n", date_at(soon(3600)))).result(timeout=5)
    execution = scheduler.run_job_now("n").result(timeout=5)
    assert scheduler.wait_idle(5)
    assert scheduler.store.get_execution(execution.id).status == Status.COMPLETED
    assert runner.job_ids == ["n"]


def test_a_blocked_listener_does_not_stall_firing() -> None:
    with Harness() as h:
        release = threading.Event()
        h.scheduler.events.subscribe(lambda event: release.wait(10))
        heard: list[Event] = []
        h.scheduler.events.subscribe(heard.append)
        for number in range(50):
            h.add(make_job(f"j{number}", date_at(T0)))
        started = time.monotonic()
        h.at(0)
        h.settle()
        assert time.monotonic() - started < 2.0
        assert len(h.runner.requests) == 50
        assert h.statuses().count("completed") == 50
        release.set()


def test_an_armed_fire_never_starts_before_it_is_due() -> None:
    starts: list[float] = []

    def note_start(request: RunRequest) -> Outcome:
        starts.append(time.time())
        return Outcome(Status.COMPLETED)

    runner = Recorder(note_start)
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.arm_lead = 0.2  # armed long before it is due
    scheduler.start()
    try:
        due = soon(0.3)
        scheduler.add_job(make_job("armed", date_at(due))).result(timeout=5)
        assert runner.started.wait(2)
        assert scheduler.wait_idle(5)
        assert starts[0] >= due.timestamp()
        (execution,) = scheduler.store.list_executions(job_id="armed")
        assert execution.started_at is not None and execution.started_at >= due
    finally:
        scheduler.shutdown(timeout=5)


def test_cancelling_an_armed_fire_stops_it_before_it_starts() -> None:
    runner = Recorder()
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.arm_lead = 5.0
    scheduler.start()
    try:
        scheduler.add_job(make_job("armed", date_at(soon(3)))).result(timeout=5)
        store = scheduler.store
        assert wait_for(lambda: len(store.list_executions(job_id="armed")) == 1, 2)
        (queued,) = store.list_executions(job_id="armed")
        cancelled = scheduler.cancel_execution(queued.id).result(timeout=2)
        assert cancelled.status == Status.CANCELLED
        assert cancelled.error == "cancelled before it started"
        assert runner.requests == []
    finally:
        scheduler.shutdown(timeout=5)


def test_shutdown_cancels_fires_armed_but_not_yet_due() -> None:
    runner = Recorder()
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.arm_lead = 5.0
    scheduler.start()
    scheduler.add_job(make_job("armed", date_at(soon(3)))).result(timeout=5)
    store = scheduler.store
    assert wait_for(lambda: len(store.list_executions(job_id="armed")) == 1, 2)
    started = time.monotonic()
    scheduler.shutdown(timeout=5)
    assert time.monotonic() - started < 1.0
    (execution,) = store.list_executions(job_id="armed")
    assert execution.status == Status.CANCELLED and runner.requests == []


def _armed(scheduler: Scheduler, job_id: str, due: datetime, **fields: object) -> None:
    """Add a job due at `due` and wait until the loop has armed (claimed) its fire."""
    scheduler.add_job(make_job(job_id, date_at(due), **fields)).result(timeout=5)
    store = scheduler.store
    assert wait_for(lambda: len(store.list_executions(job_id=job_id)) == 1, 2)


@pytest.mark.parametrize("change", ["pause", "remove"])
def test_pausing_or_removing_a_job_withdraws_its_armed_fire(change: str) -> None:
    runner = Recorder()
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.arm_lead = 5.0
    scheduler.start()
    try:
        _armed(scheduler, "armed", soon(3))
        if change == "pause":
            scheduler.pause_job("armed").result(timeout=2)
        else:
            scheduler.remove_job("armed").result(timeout=2)
        store = scheduler.store
        assert wait_for(
            lambda: store.list_executions(job_id="armed")[0].status == Status.CANCELLED, 2
        )
        (execution,) = store.list_executions(job_id="armed")
        assert ("paused" if change == "pause" else "removed") in (execution.error or "")
        assert runner.requests == []
    finally:
        scheduler.shutdown(timeout=5)


def test_a_modify_reaches_a_fire_armed_before_it() -> None:
    runner = Recorder()
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.arm_lead = 5.0
    scheduler.start()
    try:
        _armed(scheduler, "armed", soon(0.5), args=["old"])
        scheduler.modify_job("armed", args=["new"]).result(timeout=2)
        assert runner.started.wait(5)
        assert runner.requests[0].job.args == ["new"]
    finally:
        scheduler.shutdown(timeout=5)


def test_pausing_a_job_leaves_its_queued_manual_run_alone() -> None:
    release = threading.Event()

    def held(request: RunRequest) -> Outcome:
        release.wait(5)
        return Outcome(Status.COMPLETED)

    runner = Recorder(held)
    scheduler = Scheduler(MemoryStore(), runner, pool_size=1)
    scheduler.start()
    try:
        scheduler.add_job(make_job("manual", date_at(soon(3600)))).result(timeout=5)
        scheduler.run_job_now("manual").result(timeout=2)
        assert runner.started.wait(5)
        queued = scheduler.run_job_now("manual").result(timeout=2)  # waits for the worker
        scheduler.pause_job("manual").result(timeout=2)
        release.set()
        assert scheduler.wait_idle(5)
        assert scheduler.store.get_execution(queued.id).status == Status.COMPLETED
        assert len(runner.requests) == 2
    finally:
        scheduler.shutdown(timeout=5)
