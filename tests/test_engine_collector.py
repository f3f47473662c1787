"""The loop paces CPython's full collector passes: after bulk work, at a quiet moment,
and right after arming a crowd (armed with the collector paused), not among the starts:
the collector stays paused until the crowd's fires have all been taken by workers.
"""

from __future__ import annotations

import gc
import time
from datetime import datetime, timedelta

from engine.gcpause import BULK_ITEMS
from engine.scheduling.collector import BULK_MADE, QUIET, CollectorPacer
from engine.scheduling.loop import MAX_CROWD_HOLD, EngineLoop
from tests.engine_support import T0, Harness, date_at, make_job


def quiet_pacer(made: int) -> CollectorPacer:
    pacer = CollectorPacer()
    pacer.note(0, made)
    pacer.last_command = time.monotonic() - 2 * QUIET
    return pacer


def test_a_pass_is_wanted_only_after_bulk_work_and_in_a_quiet_stretch_long_enough() -> None:
    assert not quiet_pacer(BULK_MADE - 1).wanted(None)
    pacer = quiet_pacer(BULK_MADE)
    assert pacer.wanted(None)  # nothing scheduled at all
    assert pacer.wanted(pacer.room_needed())
    assert not pacer.wanted(pacer.room_needed() / 2)  # a fire would wait for it
    pacer.note(1, 0)  # a command just now: not quiet
    assert not pacer.wanted(None)


def test_no_pass_while_the_collector_is_paused_and_a_pass_resets_the_count() -> None:
    pacer = quiet_pacer(BULK_MADE)
    gc.disable()
    try:
        assert not pacer.wanted(None) and not pacer.bulk_done()
    finally:
        gc.enable()
    took = pacer.collect()
    assert took >= 0 and pacer.passes == 1 and pacer.made == 0
    assert pacer.pass_cost > 0 and not pacer.bulk_done()


def test_a_crowd_is_armed_with_the_collector_paused_then_collected_before_it_is_due() -> None:
    due = T0 + timedelta(seconds=5)
    seen: list[bool] = []
    with Harness() as h:
        loop: EngineLoop = h.scheduler._loop
        for number in range(BULK_MADE):
            h.scheduler.add_job(make_job(f"crowd-{number}", date_at(due)))
        h.scheduler.run_once(h.clock.now())  # applies the adds
        head = due.timestamp()
        _, lead = loop.plan_wait(head, head - 1.0)  # counts the crowd
        assert loop._crowd >= BULK_ITEMS

        real_fire_due = loop._firer.fire_due

        def fire_due(now: datetime, lead: float = 0.0) -> int:
            seen.append(gc.isenabled())
            return real_fire_due(now, lead)

        loop._firer.fire_due = fire_due  # type: ignore[method-assign]
        now = due - timedelta(seconds=lead / 2)
        h.clock.set(now)
        passes = loop.collector.passes
        loop._step(now, lead + 0.004)
        assert seen == [False]  # armed with the collector paused
        assert loop.collector.passes == passes + 1  # and collected at once, before the due time
        armed = h.store.list_executions(limit=2 * BULK_MADE)
        assert len(armed) == BULK_MADE and all(e.created_at < due for e in armed)
        # then paused again while the crowd's fires wait for workers, at most
        # MAX_CROWD_HOLD past its due time
        assert not gc.isenabled()
        assert loop._firer.waiting() > 0
        assert loop._end_crowd_hold(due.timestamp())
        assert not gc.isenabled()
        made = loop.collector.made
        assert not loop._end_crowd_hold(due.timestamp() + lead + MAX_CROWD_HOLD)
        assert gc.isenabled()
        assert loop.collector.made == made + BULK_MADE  # its pass comes at a quiet moment


def arm_crowd_by_hand(h: Harness, due: datetime) -> EngineLoop:
    """A crowd of BULK_ITEMS one-off jobs due at `due`, armed by one loop step taken by
    hand (no loop thread): the collector is paused from then on."""
    loop: EngineLoop = h.scheduler._loop
    for number in range(BULK_ITEMS):
        h.scheduler.add_job(make_job(f"crowd-{number}", date_at(due)))
    h.scheduler.run_once(h.clock.now())
    head = due.timestamp()
    _, lead = loop.plan_wait(head, head - 1.0)
    now = due - timedelta(seconds=lead / 2)
    h.clock.set(now)
    loop._step(now, lead + 0.004)
    assert not gc.isenabled()
    return loop


def test_the_collector_comes_back_once_the_crowd_has_been_taken() -> None:
    due = T0 + timedelta(seconds=5)
    with Harness() as h:
        loop = arm_crowd_by_hand(h, due)
        h.clock.set(due)  # the workers start the crowd
        h.settle()
        assert loop._firer.waiting() == 0
        assert not loop._end_crowd_hold(due.timestamp())  # long before MAX_CROWD_HOLD
        assert gc.isenabled()
        assert len(h.runner.requests) == BULK_ITEMS


def test_a_shutdown_ends_the_pause_of_a_crowd_armed_by_hand() -> None:
    due = T0 + timedelta(seconds=5)
    with Harness() as h:
        arm_crowd_by_hand(h, due)
    assert gc.isenabled()  # no loop thread ever ran, and the shutdown let it go
