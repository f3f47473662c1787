"""EventBus: filtering, unsubscribe, failing listeners, overflow that never blocks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from engine.errors import InvalidInput
from engine.events import JOB_ADDED, JOB_REMOVED, Event, EventBus

AT = datetime(2026, 1, 1, tzinfo=UTC)


def wait_for(predicate: object, timeout: float = 2.0) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return False


def test_listeners_get_the_kinds_they_asked_for() -> None:
    bus = EventBus()
    everything: list[Event] = []
    removals: list[Event] = []
    bus.subscribe(everything.append)
    bus.subscribe(removals.append, {JOB_REMOVED})
    bus.emit(JOB_ADDED, "a", AT)
    bus.emit(JOB_REMOVED, "a", AT)
    assert wait_for(lambda: len(everything) == 2 and len(removals) == 1)
    assert [e.kind for e in everything] == [JOB_ADDED, JOB_REMOVED]
    assert removals[0].job_id == "a" and removals[0].at == AT
    bus.close()


def test_unsubscribe_and_unknown_kinds() -> None:
    bus = EventBus()
    seen: list[Event] = []
    unsubscribe = bus.subscribe(seen.append, {JOB_ADDED})
    assert bus.wants(JOB_ADDED) and not bus.wants(JOB_REMOVED)
    unsubscribe()
    assert not bus.wants(JOB_ADDED)
    bus.emit(JOB_ADDED, "a", AT)
    with pytest.raises(InvalidInput, match="no_such_kind"):
        bus.subscribe(seen.append, {"no_such_kind"})
    bus.close()
    assert seen == []


def test_a_failing_listener_does_not_stop_the_others() -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.emit(JOB_ADDED, "a", AT)
    assert wait_for(lambda: len(seen) == 1)
    bus.close()


def test_overflow_is_counted_and_emit_never_blocks() -> None:
    bus = EventBus(queue_size=5)
    release = threading.Event()
    bus.subscribe(lambda event: release.wait(5))
    started = time.monotonic()
    for _ in range(50):
        bus.emit(JOB_ADDED, "a", AT)
    assert time.monotonic() - started < 0.5
    assert bus.overflowed >= 50 - 5 - 1  # one may already be in the listener's hands
    release.set()
    bus.close()
    assert bus.delivered + bus.overflowed == 50
