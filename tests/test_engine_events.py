"""EventBus: filtering, unsubscribe, failing listeners, overflow that never blocks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from engine.errors import InvalidInput
from engine.events import EXECUTION_STARTED, JOB_ADDED, JOB_REMOVED, Event, EventBus, Interest
from engine.model import Execution, Status

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


def test_a_listener_with_an_interest_gets_only_the_jobs_it_takes() -> None:
    bus = EventBus()
    interest = Interest(everything=False)
    narrow: list[Event] = []
    bus.subscribe(narrow.append, {JOB_ADDED}, interest)
    # taking nothing: the event is not even built, let alone queued
    assert not bus.wants(JOB_ADDED) and not bus.wants(JOB_ADDED, "a")
    bus.emit(JOB_ADDED, "a", AT)
    interest.set(False, {"b"})
    assert bus.wants(JOB_ADDED) and bus.wants(JOB_ADDED, "b") and not bus.wants(JOB_ADDED, "a")
    assert not bus.wants(JOB_REMOVED, "b")  # its kinds still apply
    bus.emit(JOB_ADDED, "a", AT)
    bus.emit(JOB_ADDED, "b", AT)
    interest.set(True)
    bus.emit(JOB_ADDED, "c", AT)
    assert wait_for(lambda: len(narrow) == 2)
    assert [e.job_id for e in narrow] == ["b", "c"]
    assert bus.delivered == 2  # the events nobody took never reached the queue
    bus.close()


def test_an_interest_is_asked_again_at_delivery_and_others_still_get_everything() -> None:
    bus = EventBus()
    interest = Interest(everything=False, jobs={"a"})
    gate = threading.Event()
    narrow: list[Event] = []
    broad: list[Event] = []
    bus.subscribe(lambda event: gate.wait(5))  # holds delivery until the interest changed
    bus.subscribe(narrow.append, None, interest)
    bus.subscribe(broad.append)
    bus.emit(JOB_ADDED, "a", AT)
    bus.emit(JOB_ADDED, "z", AT)
    interest.set(False)  # the listener lost interest before delivery
    gate.set()
    assert wait_for(lambda: len(broad) == 2)
    bus.close()
    assert narrow == [] and [e.job_id for e in broad] == ["a", "z"]


def test_fresh_snapshots_are_not_copied_again() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    execution = Execution(id="e", job_id="a", status=Status.RUNNING, created_at=AT)
    bus.emit(EXECUTION_STARTED, "a", AT, execution=execution, fresh=True)
    bus.emit(EXECUTION_STARTED, "a", AT, execution=execution)
    assert wait_for(lambda: len(seen) == 2)
    bus.close()
    assert seen[0].execution is execution
    assert seen[1].execution is not execution and seen[1].execution == execution
