"""Expected starts: what the service's event loop gives way to (engine/running/wakes.py).

An armed fire's start is registered from the moment its worker takes it until its
runner says the run began; the loop's wake to arm the next fires is registered until
its step ran. `give_way` waits for the earliest one due within the caller's next piece
of work, with the GIL released, and never long past it. Times are a hand-set clock
where the logic is the point; the waits are real and short."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from engine.interfaces import Outcome, RunRequest
from engine.model import Status
from engine.running.wakes import MAX_START_WAIT, ArmedWakes
from engine.scheduler import Scheduler
from stores.memory import MemoryStore
from tests.engine_support import HandClock, Recorder, date_at, make_job, wait_for

WAIT = 5.0


def test_nothing_expected_means_no_wait() -> None:
    wakes = ArmedWakes(HandClock())
    assert not wakes.expecting
    assert wakes.give_way(1.0) is False


def test_a_start_further_off_than_the_work_is_not_waited_for() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    token = wakes.expect_start(clock.now + 0.5)  # nobody will start it
    began = time.monotonic()
    assert wakes.give_way(0.1) is False
    assert time.monotonic() - began < 0.25
    wakes.started(token)
    assert not wakes.expecting


def test_it_waits_until_the_start_happened() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    token = wakes.expect_start(clock.now + 2.0)  # bounded 2 s (+ MAX_START_WAIT) off
    order: list[str] = []

    def worker() -> None:
        time.sleep(0.01)
        order.append("started")
        wakes.started(token)

    thread = threading.Thread(target=worker)
    thread.start()
    assert wakes.give_way(2.5) is True  # the next 2.5 s of work would cover it
    order.append("went on")
    thread.join(WAIT)
    assert order == ["started", "went on"]
    assert not wakes.expecting


def test_the_earliest_start_is_the_one_waited_for() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    later = wakes.expect_start(clock.now + 3.0)
    sooner = wakes.expect_start(clock.now + 1.0)
    threading.Timer(0.01, lambda: wakes.started(sooner)).start()
    began = time.monotonic()
    assert wakes.give_way(2.0) is True  # `later` is outside the work: not waited for
    assert time.monotonic() - began < 1.5
    wakes.started(later)


def test_a_start_that_never_happens_holds_the_caller_only_briefly() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    token = wakes.expect_start(clock.now - MAX_START_WAIT / 2)  # due, and stalled
    began = time.monotonic()
    assert wakes.give_way(1.0) is True
    assert time.monotonic() - began < 0.25  # 2 ms, bounded loosely for a busy machine
    wakes.started(token)


def test_a_start_long_overdue_is_not_waited_for_again() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    token = wakes.expect_start(clock.now - 2 * MAX_START_WAIT)
    assert wakes.expecting  # registered, but past waiting for
    assert wakes.give_way(1.0) is False
    wakes.started(token)


def test_started_twice_is_harmless() -> None:
    wakes = ArmedWakes(HandClock())
    token = wakes.expect_start(1000.0)
    wakes.started(token)
    wakes.started(token)  # the runner said so, then the executor after the run
    assert not wakes.expecting


def _scheduler(runner: Recorder) -> Scheduler:
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.arm_lead = 5.0  # arm at once: the fire's start is registered early
    scheduler.start()
    return scheduler


def test_an_armed_fire_is_expected_until_its_runner_says_it_began() -> None:
    seen: list[bool] = []
    began = threading.Event()
    finish = threading.Event()

    def run(request: RunRequest) -> Outcome:
        assert request.started is not None
        seen.append(scheduler.wakes.expecting)  # still expected on the way in
        request.started()
        seen.append(scheduler.wakes.expecting)  # the run has begun
        began.set()
        finish.wait(WAIT)
        return Outcome(Status.COMPLETED)

    scheduler = _scheduler(Recorder(run))
    try:
        due = datetime.now(UTC) + timedelta(seconds=1.0)
        scheduler.add_job(make_job("armed", date_at(due))).result(timeout=WAIT)
        assert wait_for(lambda: scheduler.wakes.gap() is not None, WAIT)  # armed, asleep
        assert scheduler.wakes.expecting
        assert began.wait(WAIT)
        assert seen == [True, False]
        finish.set()
    finally:
        finish.set()
        scheduler.shutdown(timeout=WAIT)


def test_a_runner_that_never_says_so_is_covered_by_the_executor() -> None:
    done = threading.Event()

    def run(request: RunRequest) -> Outcome:
        done.set()
        return Outcome(Status.COMPLETED)  # never calls request.started

    scheduler = _scheduler(Recorder(run))
    try:
        due = datetime.now(UTC) + timedelta(seconds=0.3)
        scheduler.add_job(make_job("quiet", date_at(due))).result(timeout=WAIT)
        assert done.wait(WAIT)
        assert wait_for(lambda: not scheduler.wakes.expecting, WAIT)
    finally:
        scheduler.shutdown(timeout=WAIT)


def test_a_cancelled_armed_fire_leaves_no_expected_start_behind() -> None:
    scheduler = _scheduler(Recorder())
    try:
        due = datetime.now(UTC) + timedelta(seconds=3.0)
        scheduler.add_job(make_job("armed", date_at(due))).result(timeout=WAIT)
        assert wait_for(lambda: scheduler.wakes.gap() is not None, WAIT)
        (queued,) = scheduler.store.list_executions(job_id="armed")
        scheduler.cancel_execution(queued.id).result(timeout=WAIT)
        assert wait_for(lambda: not scheduler.wakes.expecting, WAIT)
    finally:
        scheduler.shutdown(timeout=WAIT)


def test_the_loop_expects_its_own_wake_to_arm_the_next_fire() -> None:
    scheduler = Scheduler(MemoryStore(), Recorder())  # the usual lead: armed shortly before
    scheduler.start()
    try:
        due = datetime.now(UTC) + timedelta(seconds=0.6)
        scheduler.add_job(make_job("soon", date_at(due))).result(timeout=WAIT)
        wakes = scheduler.wakes
        assert wait_for(lambda: wakes.expecting, WAIT)
        (wake,) = wakes._starts.values()  # its wake, not the fire's start (not armed yet)
        assert due.timestamp() - 0.05 < wake <= due.timestamp() - scheduler._loop.lead
        assert wait_for(lambda: scheduler.store.list_executions(job_id="soon"), WAIT)
        assert wait_for(lambda: not wakes.expecting, WAIT)  # armed, started, nothing next
    finally:
        scheduler.shutdown(timeout=WAIT)
