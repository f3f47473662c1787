"""The loop thread's steps arm a fire that comes due while they apply commands before
the next command (`EngineLoop._apply_between_fires`), not after the last: a stream of
writes must not make due fires wait behind it. Hand-driven steps (`run_once`, the fake
clock's tests) keep the plain order: every drained command first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.clock import FakeClock
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, date_at, make_job


class SlowWrites(MemoryStore):
    """A memory store whose job updates take `cost` seconds of the fake clock, as a
    write to a real store takes real time."""

    clock: FakeClock | None = None
    cost = 0.0

    def update_job(self, job: Any) -> None:
        super().update_job(job)
        if self.clock is not None:
            self.clock.advance(self.cost)


@pytest.mark.parametrize("between", [True, False])
def test_a_fire_due_during_a_steps_commands_is_armed_before_the_next(between: bool) -> None:
    store = SlowWrites()
    with Harness(store=store) as h:
        h.scheduler.start(loop_thread=False)
        h.add(make_job("due", date_at(T0 + timedelta(seconds=1))))
        h.add(make_job("other", date_at(T0 + timedelta(hours=1))))
        h.at(0.5)
        store.clock, store.cost = h.clock, 1.0  # the modify takes the clock past the due time
        h.scheduler.modify_job("other", name="renamed")
        h.scheduler.pause_job("due")
        h.scheduler._loop._step(h.clock.now(), 0.0, between=between)
        h.settle()
        ran = [e.status.value for e in h.executions("due")]
        # armed between the commands it runs; applied in order, the pause comes first
        assert ran == (["completed"] if between else [])
        assert h.store.get_job("due").paused
