"""The loop and the recorder step aside for a worker waking at an armed fire's due time:
they wait (with the GIL released) only when their next piece of work would overlap that
wake, only until the worker has woken, and never for long when it does not wake.

The times here are a hand-set clock; only the waits are real, and short."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from engine.interfaces import Outcome, RunRequest
from engine.model import Status
from engine.running.wakes import MAX_WAIT_PAST_DUE, ArmedWakes
from engine.scheduler import Scheduler
from engine.scheduling.loop import ARM_COST_MARGIN, PACE_BATCH
from stores.memory import MemoryStore
from tests.engine_support import T0, HandClock, Harness, Recorder, date_at, make_job, wait_for

WAIT = 5.0


def _near(gap: float | None, seconds: float) -> bool:
    return gap is not None and abs(gap - seconds) < 1e-9


def test_nothing_to_step_aside_for_when_no_worker_sleeps() -> None:
    wakes = ArmedWakes(HandClock())
    assert wakes.gap() is None
    assert wakes.step_aside(1.0) is None


def test_the_gap_is_to_the_earliest_sleeping_worker() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    later = wakes.sleeping(1000.5)
    sooner = wakes.sleeping(1000.2)
    assert _near(wakes.gap(), 0.2)
    wakes.woke(sooner)
    assert _near(wakes.gap(), 0.5)
    wakes.woke(later)
    assert wakes.gap() is None


def test_work_that_fits_before_the_wake_does_not_wait() -> None:
    wakes = ArmedWakes(HandClock())
    token = wakes.sleeping(1010.0)  # 10 s away, and nobody will wake it
    began = time.monotonic()
    gap = wakes.step_aside(0.5)
    assert time.monotonic() - began < 0.5
    assert _near(gap, 10.0)
    wakes.woke(token)


def test_it_waits_until_the_worker_woke_then_reports_the_next_gap() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    first = wakes.sleeping(1002.0)  # the wait is bounded 2 s (+1 ms) past now
    second = wakes.sleeping(1003.0)
    order: list[str] = []

    def worker() -> None:
        time.sleep(0.01)
        order.append("woke")
        wakes.woke(first)

    thread = threading.Thread(target=worker)
    thread.start()
    gap = wakes.step_aside(2.5)  # the next 2.5 s of work would cover its wake
    order.append("stepped back in")
    thread.join(WAIT)
    assert order == ["woke", "stepped back in"]
    assert _near(gap, 3.0)  # the next one's, from the hand clock
    wakes.woke(second)


def test_a_worker_late_for_a_cpu_holds_it_up_only_until_a_millisecond_past_due() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    token = wakes.sleeping(clock.now - MAX_WAIT_PAST_DUE / 2)  # overdue, never wakes
    began = time.monotonic()
    gap = wakes.step_aside(1.0)
    waited = time.monotonic() - began
    assert waited < 0.25  # half a millisecond, bounded loosely for a busy machine
    assert gap is not None and gap < 0  # still overdue: the caller goes on with its work
    wakes.woke(token)


def test_a_worker_long_overdue_is_not_waited_for_again() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    token = wakes.sleeping(clock.now - 2 * MAX_WAIT_PAST_DUE)
    assert wakes.gap() is None
    assert wakes.step_aside(1.0) is None
    wakes.woke(token)


def test_two_callers_stepping_aside_for_one_worker_both_go_on_when_it_wakes() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    token = wakes.sleeping(clock.now + 3.0)  # each caller would wait up to 3 s
    gaps: list[float | None] = []
    callers = [threading.Thread(target=lambda: gaps.append(wakes.step_aside(4.0))) for _ in "ab"]
    for caller in callers:
        caller.start()
    assert not wait_for(lambda: bool(gaps), 0.05)  # both are waiting for the worker
    woke_at = time.monotonic()
    wakes.woke(token)
    for caller in callers:
        caller.join(WAIT)
    assert gaps == [None, None]
    assert time.monotonic() - woke_at < 1.5  # released by the wake, not the 3 s bound


def _paced_loop() -> tuple[Scheduler, HandClock, ArmedWakes]:
    scheduler = Scheduler(MemoryStore(), Recorder())
    clock = HandClock()
    wakes = scheduler._loop.wakes = ArmedWakes(clock)
    scheduler._loop._arm_cost = scheduler._loop._arm_cpu = 0.1  # slow: long waits in real time
    return scheduler, clock, wakes


def test_pace_cuts_a_batch_to_what_fits_before_the_next_wake() -> None:
    scheduler, clock, wakes = _paced_loop()
    loop = scheduler._loop
    assert loop.pace(64) == 64  # nothing armed: a whole batch
    cost = loop._arm_cpu * ARM_COST_MARGIN
    token = wakes.sleeping(clock.now + cost * 10.5)
    assert loop.pace(64) == 10  # ten fires' arming fits before it
    clock.now += cost * (10.5 - PACE_BATCH + 1)  # fewer than PACE_BATCH fit: wait first
    waker = threading.Timer(0.01, lambda: wakes.woke(token))
    waker.start()
    assert loop.pace(64) == 64  # the worker woke, nothing else is armed
    waker.join(WAIT)


def test_pace_never_cuts_a_batch_below_pace_batch() -> None:
    scheduler, clock, wakes = _paced_loop()
    loop = scheduler._loop
    cost = loop._arm_cpu * ARM_COST_MARGIN
    first = wakes.sleeping(clock.now + cost)
    second = wakes.sleeping(clock.now + cost * 2)  # one fire's arming after the first
    threading.Timer(0.01, lambda: wakes.woke(first)).start()
    assert loop.pace(64) == PACE_BATCH
    wakes.woke(second)


def test_pace_takes_whole_batches_past_a_worker_late_for_a_cpu() -> None:
    scheduler, clock, wakes = _paced_loop()
    token = wakes.sleeping(clock.now - 2 * MAX_WAIT_PAST_DUE)
    began = time.monotonic()
    assert scheduler._loop.pace(64) == 64
    assert time.monotonic() - began < 0.25
    wakes.woke(token)


def test_a_paced_step_still_fires_everything_due() -> None:
    asked: list[int] = []

    def pace(most: int) -> int:
        asked.append(most)
        return 3

    with Harness() as harness:
        for number in range(10):
            harness.add(make_job(f"j{number}", date_at(T0)))
        harness.scheduler._firer.pace = pace
        harness.at(0)
        harness.settle()
        assert len(asked) == 4  # batches of 3, 3, 3 and 1; none asked once nothing is due
        assert sorted(e.job_id for e in harness.executions()) == [f"j{n}" for n in range(10)]


@contextmanager
def armed(seconds: float, runner: Recorder) -> Iterator[tuple[Scheduler, ArmedWakes, datetime]]:
    """A running scheduler holding one fire armed at once and due in `seconds`, once its
    worker has registered the sleep; shut down afterwards."""
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.arm_lead = 5.0
    scheduler.start()
    try:
        due = datetime.now(UTC) + timedelta(seconds=seconds)
        scheduler.add_job(make_job("armed", date_at(due))).result(timeout=WAIT)
        wakes = scheduler._loop.wakes
        assert wakes is not None
        assert wait_for(lambda: wakes.gap() is not None, WAIT)
        yield scheduler, wakes, due
    finally:
        scheduler.shutdown(timeout=WAIT)


def test_a_worker_registers_its_sleep_until_an_armed_fire_is_due() -> None:
    ran = threading.Event()

    def run(request: RunRequest) -> Outcome:
        ran.set()
        return Outcome(Status.COMPLETED)

    with armed(1.0, Recorder(run)) as (_, wakes, due):
        gap = wakes.gap()
        assert gap is not None and gap <= due.timestamp() - time.time() + 0.01
        assert ran.wait(WAIT)
        assert wakes.gap() is None  # it woke and went


def test_a_cancelled_armed_fire_leaves_no_sleeper_behind() -> None:
    with armed(3.0, Recorder()) as (scheduler, wakes, _):
        (queued,) = scheduler.store.list_executions(job_id="armed")
        scheduler.cancel_execution(queued.id).result(timeout=WAIT)
        assert wait_for(lambda: wakes.gap() is None, WAIT)
