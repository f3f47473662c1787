"""A crowd of fires due together is armed early enough to start on time.

`EngineLoop.plan_wait` is the loop thread's decision of how long to sleep and how far
ahead to arm; it is checked here on a fake clock, and once on the real loop thread.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from engine.model import Status
from engine.scheduler import Scheduler
from engine.scheduling.loop import ARM_LEAD, FIRST_ARM_COST, MAX_ARM_LEAD, EngineLoop
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, Recorder, date_at, make_job, wait_for

DUE = T0 + timedelta(hours=1)


def _loop(h: Harness) -> EngineLoop:
    loop: EngineLoop = h.scheduler._loop
    return loop


def _crowd(h: Harness, count: int) -> None:
    for number in range(count):
        h.add(make_job(f"crowd-{number}", date_at(DUE)))


@pytest.mark.parametrize(
    ("crowd", "low", "high"),
    [(1, ARM_LEAD, ARM_LEAD + 2 * FIRST_ARM_COST), (2000, 2000 * FIRST_ARM_COST, MAX_ARM_LEAD)],
)
def test_fires_are_armed_ahead_by_what_arming_them_takes(
    crowd: int, low: float, high: float
) -> None:
    """A lone fire gets the base lead; a crowd the time to arm all of it, with a margin."""
    with Harness() as h:
        _crowd(h, crowd)
        head = DUE.timestamp()
        delay, lead = _loop(h).plan_wait(head, head - 0.9)
        assert low < lead <= high
        assert delay is not None and abs(delay - (0.9 - lead)) < 1e-6


def test_a_far_head_gets_a_first_wake_where_its_crowd_is_counted() -> None:
    with Harness() as h:
        _crowd(h, 10)
        head = DUE.timestamp()
        delay, lead = _loop(h).plan_wait(head, head - 60.0)
        assert lead == ARM_LEAD
        assert delay is not None and abs(delay - (60.0 - MAX_ARM_LEAD - ARM_LEAD)) < 1e-6


def test_no_base_lead_means_no_arming_ahead() -> None:
    with Harness() as h:
        _crowd(h, 100)
        h.scheduler.arm_lead = 0.0
        head = DUE.timestamp()
        assert _loop(h).plan_wait(head, head - 0.5) == (0.5, 0.0)
        assert _loop(h).plan_wait(None, head) == (None, 0.0)


def test_a_crowd_on_the_loop_thread_is_all_claimed_before_it_is_due() -> None:
    runner = Recorder()
    scheduler = Scheduler(MemoryStore(), runner)
    scheduler.start()
    try:
        due = datetime.fromtimestamp(time.time() + 0.4, UTC)
        futures = [scheduler.add_job(make_job(f"c{n}", date_at(due))) for n in range(400)]
        for future in futures:
            future.result(timeout=5)
        assert wait_for(lambda: len(runner.requests) == 400, 10)
        assert scheduler.wait_idle(5)
        executions = scheduler.store.list_executions(limit=1000)
        assert len(executions) == 400
        for execution in executions:
            assert execution.status == Status.COMPLETED
            assert execution.created_at < due  # claimed (armed) ahead of the due time
            assert execution.started_at is not None and execution.started_at >= due
    finally:
        scheduler.shutdown(timeout=5)
