"""Runs: runner failures, retries, cancel (queued, running, retry), shutdown, store hiccups."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from engine.errors import ExecutionNotCancellable, ExecutionNotFound, StoreError
from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Status
from stores.memory import MemoryStore
from tests.engine_support import (
    T0,
    Harness,
    Recorder,
    date_at,
    every,
    make_job,
    wait_for,
    wait_until_cancelled,
)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def always_fails(request: RunRequest) -> Outcome:
    return Outcome(Status.FAILED, error=f"attempt {request.execution.attempt} failed")


def blocking(release: threading.Event) -> Recorder:
    return Recorder(
        lambda request: Outcome(Status.COMPLETED) if release.wait(5) else Outcome(Status.FAILED)
    )


def test_a_runner_that_raises_becomes_failed_with_its_message_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: RunRequest) -> Outcome:
        raise ZeroDivisionError("runner bug")

    with Harness(runner=broken) as h, caplog.at_level("ERROR", logger="engine.running.executor"):
        h.add(make_job("b", date_at(T0)))
        h.at(0)
        h.settle()
        (execution,) = h.executions("b")
        assert execution.status == Status.FAILED
        assert "ZeroDivisionError: runner bug" in execution.error
        assert "Traceback" not in execution.error and 'File "' not in execution.error
        logged = [r for r in caplog.records if r.exc_info]
        assert logged and logged[0].exc_info[0] is ZeroDivisionError  # type: ignore[index]
        h.add(make_job("b2", date_at(later(1))))
        h.at(1)
        h.settle()
        assert h.statuses("b2") == ["failed"]  # the worker survived


@pytest.mark.parametrize(("backoff", "gaps"), [("fixed", [10, 10]), ("exponential", [10, 20])])
def test_retries_create_linked_executions_with_backoff(backoff: str, gaps: list[int]) -> None:
    with Harness(runner=always_fails) as h:
        h.add(make_job("r", date_at(T0), retries=2, retry_delay=10, retry_backoff=backoff))
        h.at(0)
        h.settle()
        first, retry = h.executions("r")
        assert (first.status, retry.status) == (Status.FAILED, Status.SCHEDULED)
        assert retry.scheduled_for == later(gaps[0]) and retry.reason == "retry"
        assert (retry.attempt, retry.retry_of) == (2, first.id)
        h.at(gaps[0] - 0.5)  # takes the retry onto the heap; not due yet
        h.settle()
        assert h.statuses("r") == ["failed", "scheduled"]
        h.at(gaps[0])
        h.settle()
        h.at(gaps[0] + gaps[1])
        h.settle()
        h.at(1000)
        h.settle()
        runs = h.executions("r")
        assert [e.attempt for e in runs] == [1, 2, 3]
        assert [e.status for e in runs] == [Status.FAILED] * 3
        assert [e.retry_of for e in runs] == [None, runs[0].id, runs[1].id]
        assert [e.started_at for e in runs] == [T0, later(gaps[0]), later(gaps[0] + gaps[1])]
        assert runs[2].error == "attempt 3 failed"


def test_cancel_a_queued_execution_ends_it_at_once() -> None:
    release = threading.Event()
    runner = blocking(release)
    with Harness(runner=runner, pool_size=1) as h:
        h.add(make_job("q", every(3600, start=later(3600)), max_instances=5))
        running = h.do(h.scheduler.run_job_now("q"))
        assert runner.started.wait(5)
        queued = h.do(h.scheduler.run_job_now("q"))
        cancelled = h.do(h.scheduler.cancel_execution(queued.id))
        assert cancelled.status == Status.CANCELLED
        assert h.store.get_execution(queued.id).status == Status.CANCELLED
        release.set()
        h.settle()
        assert h.store.get_execution(running.id).status == Status.COMPLETED
        assert len(runner.requests) == 1
        with pytest.raises(ExecutionNotCancellable, match="completed"):
            h.do(h.scheduler.cancel_execution(running.id))
        with pytest.raises(ExecutionNotFound):
            h.do(h.scheduler.cancel_execution("no-such-execution"))


def test_cancel_a_running_execution_sets_its_flag_and_ends_cancelled() -> None:
    runner = Recorder(wait_until_cancelled)
    with Harness(runner=runner) as h:
        h.add(make_job("c", date_at(T0)))
        h.at(0)
        assert runner.started.wait(5)
        (execution,) = h.executions("c")
        future = h.scheduler.cancel_execution(execution.id)
        h.scheduler.run_once(h.clock.now())
        done = future.result(timeout=5)
        assert done.status == Status.CANCELLED and done.output == "stopped\n"
        assert runner.requests[0].cancel.is_set()
        h.settle()
        assert h.store.get_execution(execution.id).status == Status.CANCELLED


def test_cancel_a_scheduled_retry() -> None:
    with Harness(runner=always_fails) as h:
        h.add(make_job("r", date_at(T0), retries=1, retry_delay=60))
        h.at(0)
        h.settle()
        h.at(1)  # the retry is on the heap now
        retry = h.executions("r")[1]
        cancelled = h.do(h.scheduler.cancel_execution(retry.id))
        assert cancelled.status == Status.CANCELLED
        h.at(120)
        h.settle()
        assert h.statuses("r") == ["failed", "cancelled"]


def test_shutdown_lets_a_running_execution_finish_within_the_timeout() -> None:
    release = threading.Event()
    runner = blocking(release)
    h = Harness(runner=runner)
    h.add(make_job("s", date_at(T0)))
    h.at(0)
    assert runner.started.wait(5)
    threading.Timer(0.05, release.set).start()
    h.scheduler.shutdown(timeout=5)
    assert h.statuses("s") == ["completed"]


def test_shutdown_cancels_what_outlives_the_timeout_and_what_is_queued() -> None:
    runner = Recorder(wait_until_cancelled)
    h = Harness(runner=runner, pool_size=1)
    h.add(make_job("s", date_at(T0), max_instances=2))
    h.at(0)
    assert runner.started.wait(5)
    queued = h.do(h.scheduler.run_job_now("s"))
    h.scheduler.shutdown(timeout=0.05)
    running, waiting = h.executions("s")
    assert running.status == Status.CANCELLED and running.output == "stopped\n"
    assert waiting.id == queued.id and waiting.status == Status.CANCELLED
    assert "before this execution started" in waiting.error


def test_shutdown_records_a_run_that_ignores_cancel_as_cancelled() -> None:
    release = threading.Event()
    runner = blocking(release)
    h = Harness(runner=runner)
    h.scheduler.cancel_grace = 0.05
    h.add(make_job("stuck", date_at(T0)))
    h.at(0)
    assert runner.started.wait(5)
    h.scheduler.shutdown(timeout=0.05)
    (execution,) = h.executions("stuck")
    assert execution.status == Status.CANCELLED
    assert "shut down while this execution was running" in execution.error
    release.set()  # the late outcome does not overwrite the record
    assert h.scheduler.wait_idle(2)  # the worker got its late outcome and let it go
    assert h.store.get_execution(execution.id).status == Status.CANCELLED


class FlakyUpdates(MemoryStore):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def update_execution(self, execution: Execution) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")
        super().update_execution(execution)


def test_a_store_error_in_a_worker_is_retried_not_lost() -> None:
    with Harness(store=FlakyUpdates(failures=2)) as h:
        h.add(make_job("f", date_at(T0)))
        h.at(0)
        h.settle()
        assert h.statuses("f") == ["completed"]


class SlowRecords(MemoryStore):
    """A memory store whose batch writes (the recorder's) land only after `delay`."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        time.sleep(self.delay)
        super().record_progress(started, finished)


def test_cancelling_a_run_whose_end_is_not_written_yet_says_how_it_ended() -> None:
    """A run that ended but whose record the recorder has not written yet is in no
    queue and in no worker: the cancel waits for the write and names the real status,
    not the stale `running` (or `queued`) still in the store."""
    store = SlowRecords(delay=0.2)
    with Harness(store=store) as h:
        h.add(make_job("quick", every(3600, start=later(3600))))
        run = h.do(h.scheduler.run_job_now("quick"))
        assert h.runner.started.wait(5)
        assert wait_for(lambda: not h.scheduler.running_execution_ids(), 5)
        assert store.get_execution(run.id).status in (Status.QUEUED, Status.RUNNING)
        with pytest.raises(ExecutionNotCancellable, match="completed"):
            h.do(h.scheduler.cancel_execution(run.id))
