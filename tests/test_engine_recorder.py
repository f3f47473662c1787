"""The recorder thread: workers' reports are written in batches, in order, bounded,
and nothing reported is lost at shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from engine.errors import StoreError
from engine.model import Execution, Status
from engine.running.recorder import DEFAULT_LIMIT, HELD_LIMIT, MAX_DEFER, Recorder
from stores.memory import MemoryStore
from tests.engine_support import T0, every, make_job

WAIT = 5.0


class GatedStore(MemoryStore):
    """A memory store whose batch writes wait for `gate`, counting each call."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls: list[tuple[int, int]] = []
        self.failures = 0

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT), "the gate was never opened"
        if self.failures:
            self.failures -= 1
            raise StoreError("store down for a moment")
        self.calls.append((len(started), len(finished)))
        super().record_progress(started, finished)


def _queued(store: MemoryStore, count: int) -> list[Execution]:
    job = make_job("j", every(60))
    store.add_job(job)
    executions = []
    for number in range(count):
        execution = Execution(id=f"e{number}", job_id="j", status=Status.QUEUED, created_at=T0)
        store.add_execution(execution)
        executions.append(execution)
    return executions


def _finish(execution: Execution) -> Execution:
    execution.status, execution.started_at = Status.COMPLETED, T0
    execution.completed_at = T0 + timedelta(seconds=1)
    return execution


def test_reports_queued_behind_a_slow_write_land_in_one_batch() -> None:
    store = GatedStore()
    executions = _queued(store, 101)
    recorder = Recorder(store, threading.Event())
    store.gate.clear()
    recorder.finished(_finish(executions[0]), lambda: None)  # the thread now waits in it
    assert store.entered.wait(WAIT)
    for execution in executions[1:]:
        recorder.finished(_finish(execution), lambda: None)
    store.gate.set()
    assert recorder.flush(WAIT)
    assert store.calls == [(0, 1), (0, 100)]
    assert store.get_job("j").total_executions == 101
    recorder.stop(WAIT)


def test_follow_ups_run_after_the_write_in_report_order() -> None:
    store = MemoryStore()
    first, second = _queued(store, 2)
    seen: list[tuple[str, Status]] = []
    recorder = Recorder(store, threading.Event())
    running = first
    running.status, running.started_at = Status.RUNNING, T0
    recorder.started(running)
    for execution in (second, first):
        done = _finish(execution)
        recorder.finished(
            done, lambda e=done: seen.append((e.id, store.get_execution(e.id).status))
        )
    assert recorder.flush(WAIT)
    assert seen == [("e1", Status.COMPLETED), ("e0", Status.COMPLETED)]
    recorder.stop(WAIT)


def test_a_started_report_lands_as_running() -> None:
    store = MemoryStore()
    (execution,) = _queued(store, 1)
    recorder = Recorder(store, threading.Event())
    execution.status, execution.started_at = Status.RUNNING, T0
    recorder.started(execution)
    assert recorder.flush(WAIT)
    stored = store.get_execution(execution.id)
    assert (stored.status, stored.started_at) == (Status.RUNNING, T0)
    recorder.stop(WAIT)


def test_a_failed_write_is_retried_until_it_lands() -> None:
    store = GatedStore()
    store.failures = 2
    (execution,) = _queued(store, 1)
    recorder = Recorder(store, threading.Event())
    recorder.finished(_finish(execution), lambda: None)
    assert recorder.flush(WAIT)
    assert store.get_execution(execution.id).status == Status.COMPLETED
    assert store.failures == 0
    recorder.stop(WAIT)


def test_a_reporter_waits_when_the_recorder_is_too_far_behind() -> None:
    store = GatedStore()
    executions = _queued(store, 12)
    recorder = Recorder(store, threading.Event(), limit=4)
    store.gate.clear()
    done = threading.Event()

    def report_all() -> None:
        for execution in executions:
            recorder.finished(_finish(execution), lambda: None)
        done.set()

    reporter = threading.Thread(target=report_all)
    reporter.start()
    assert not done.wait(0.2)  # held back: more than `limit` reports unwritten
    store.gate.set()
    assert done.wait(WAIT)
    reporter.join(WAIT)
    assert recorder.flush(WAIT)
    assert store.get_job("j").total_executions == 12
    recorder.stop(WAIT)


def test_stop_writes_everything_reported_and_stragglers_are_written_inline() -> None:
    store = MemoryStore()
    first, late = _queued(store, 2)
    recorder = Recorder(store, threading.Event())
    recorder.finished(_finish(first), lambda: None)
    recorder.stop(WAIT)
    assert store.get_execution(first.id).status == Status.COMPLETED
    ran: list[str] = []
    recorder.finished(_finish(late), lambda: ran.append("after"))
    assert store.get_execution(late.id).status == Status.COMPLETED and ran == ["after"]
    assert recorder.flush(0.0)


def test_a_batch_waits_while_workers_get_through_a_crowd_of_due_fires() -> None:
    store = GatedStore()
    executions = _queued(store, 4)
    recorder = Recorder(store, threading.Event())
    left = [3]

    def behind() -> int:
        """Three more due fires wait, then two, one, none: a worker starts one and
        reports it between two looks."""
        if left[0] > 0:
            recorder.finished(_finish(executions[4 - left[0]]), lambda: None)
        left[0] -= 1
        return max(left[0] + 1, 0)

    recorder.behind = behind
    recorder.finished(_finish(executions[0]), lambda: None)
    assert recorder.flush(WAIT)
    assert store.calls == [(0, 4)]  # one write, after the crowd
    recorder.stop(WAIT)


def test_a_batch_is_written_at_once_when_the_workers_are_stuck() -> None:
    store = GatedStore()
    (execution,) = _queued(store, 1)
    recorder = Recorder(store, threading.Event())
    recorder.behind = lambda: 5  # due fires wait, and no worker takes any
    began = time.monotonic()
    recorder.finished(_finish(execution), lambda: None)
    assert recorder.flush(WAIT)
    assert time.monotonic() - began < MAX_DEFER  # did not wait for the crowd
    assert store.calls == [(0, 1)]
    recorder.stop(WAIT)


def test_batches_are_held_back_only_where_no_running_mark_closes_a_crash_window(
    tmp_path: Path,
) -> None:
    from engine.scheduler import Scheduler
    from stores.sqlite import SqliteStore

    def runner(request: object) -> None:
        raise AssertionError("nothing runs here")

    bare = Scheduler(MemoryStore(), runner)
    assert bare._recorder.behind is not None and bare._recorder.behind() == 0
    assert bare._recorder._limit == HELD_LIMIT
    store = SqliteStore(tmp_path / "t.db")
    store.open()
    journaled = Scheduler(store, runner, journal_folder=tmp_path / "journal")
    assert journaled._journal is not None and journaled._recorder.behind is None
    assert journaled._recorder._limit == DEFAULT_LIMIT
    store.close()
