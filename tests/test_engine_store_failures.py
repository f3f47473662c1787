"""What a store failure means (engine/running/backoff.py), on the fake clock: a
StoreError is retried with backoff; anything else is a bug, logged once with its
traceback, the fire recorded `failed` with the error, and never retried."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from engine.errors import StoreError
from engine.interfaces import FireClaim, Outcome
from engine.model import Execution, Status
from engine.records import new_execution
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, Recorder, date_at, every, make_job


class RaisingStore(MemoryStore):
    """A memory store whose claims (batch, single) and execution updates raise what a
    test sets, counting every call."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_error: list[Exception] = []
        self.single_error: list[Exception] = []
        self.update_error: list[Exception] = []
        self.calls = {"claim_fires": 0, "claim_fire": 0, "update_execution": 0}

    def claim_fires(self, claims: Sequence[FireClaim]) -> list[bool]:
        self.calls["claim_fires"] += 1
        if self.batch_error:
            raise self.batch_error.pop(0)
        return super().claim_fires(claims)

    def claim_fire(self, *args: Any, **kwargs: Any) -> bool:
        self.calls["claim_fire"] += 1
        if self.single_error:
            raise self.single_error.pop(0)
        return super().claim_fire(*args, **kwargs)

    def update_execution(self, execution: Execution) -> None:
        self.calls["update_execution"] += 1
        if self.update_error:
            raise self.update_error.pop(0)
        super().update_execution(execution)


def _bug_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "unexpected error" in r.getMessage()]


def test_a_store_error_is_retried_with_a_growing_backoff(caplog: pytest.LogCaptureFixture) -> None:
    store = RaisingStore()
    store.batch_error = [StoreError("database is locked")] * 3
    with Harness(store=store) as h:
        h.add(make_job("j", date_at(T0)))
        assert h.at(0) == pytest.approx(0.05)
        assert h.at(0.05) == pytest.approx(0.1)
        assert h.at(0.15) == pytest.approx(0.2)
        assert h.at(0.4) is None
        h.settle()
        assert h.statuses("j") == ["completed"]
    assert store.calls["claim_fires"] == 4
    assert sum("trying again" in r.getMessage() for r in caplog.records) == 3
    assert _bug_logs(caplog) == []


def test_a_bug_in_a_claim_records_the_fire_failed_once_and_never_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RaisingStore()
    store.batch_error = [TypeError("unsupported operand type(s)")]
    with Harness(store=store) as h:
        h.add(make_job("once", date_at(T0)))
        h.add(make_job("every", every(60)))
        assert h.at(0) == pytest.approx(60)  # nothing is looked at again soon
        h.settle()
        for job_id in ("once", "every"):
            (failed,) = h.executions(job_id)
            assert failed.status == Status.FAILED and failed.scheduled_for == T0
            assert failed.error == (
                "the store failed while claiming this fire: TypeError: unsupported operand type(s)"
            )
        assert h.runner.requests == []
        assert store.get_job("once").next_run_time is None
        h.at(60)  # the interval job goes on with its next fire
        h.settle()
        assert h.statuses("every") == ["failed", "completed"]
    (logged,) = _bug_logs(caplog)
    assert logged.exc_info is not None and logged.exc_info[0] is TypeError


def test_a_bug_that_also_breaks_the_failed_record_drops_the_job_instead_of_spinning() -> None:
    store = RaisingStore()
    store.batch_error = [KeyError("cw_jobs")]
    store.single_error = [KeyError("cw_jobs")]
    with Harness(store=store) as h:
        h.add(make_job("j", every(1)))
        assert h.at(0) is None  # off the heap: not retried
        for second in range(1, 5):
            h.at(second)
        h.settle()
        assert h.runner.requests == []
    assert store.calls == {"claim_fires": 1, "claim_fire": 1, "update_execution": 0}


def test_a_bug_while_queueing_a_retry_ends_it_failed(caplog: pytest.LogCaptureFixture) -> None:
    store = RaisingStore()
    job = make_job("r", date_at(T0))
    job.next_run_time = None
    store.add_job(job)
    retry = new_execution(job, "class", Status.SCHEDULED, T0, scheduled_for=T0, reason="retry")
    store.add_execution(retry)
    store.update_error = [AttributeError("'NoneType' object has no attribute 'id'")]
    with Harness(store=store) as h:
        h.scheduler.start(loop_thread=False)
        assert h.at(0) is None
        h.settle()
        ended = store.get_execution(retry.id)
        assert ended.status == Status.FAILED
        assert "AttributeError: 'NoneType' object has no attribute 'id'" in ended.error
        assert h.runner.requests == []
    assert len(_bug_logs(caplog)) == 1


class BuggyRecording(MemoryStore):
    """Batch writes always hit a bug; a completed record with `poison` as its return
    value cannot be stored on its own either (say, a value the encoder refuses)."""

    poison = "not storable"

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        raise TypeError("Object of type frozenset is not JSON serializable")

    def finish_execution(self, execution: Execution) -> None:
        if execution.return_value == self.poison:
            raise TypeError("Object of type frozenset is not JSON serializable")
        super().finish_execution(execution)


def test_a_bug_in_a_batch_write_records_each_run_on_its_own_or_as_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def behave(request: Any) -> Outcome:
        value = BuggyRecording.poison if request.job.id == "bad" else 7
        return Outcome(Status.COMPLETED, return_value=value)

    store = BuggyRecording()
    with Harness(runner=Recorder(behave), store=store) as h:
        h.add(make_job("good", date_at(T0)))
        h.add(make_job("bad", date_at(T0)))
        h.at(0)
        h.settle()
        (good,) = h.executions("good")
        assert (good.status, good.return_value) == (Status.COMPLETED, 7)
        (bad,) = h.executions("bad")
        assert bad.status == Status.FAILED and bad.return_value is None
        assert bad.error == (
            "recording this execution failed: "
            "TypeError: Object of type frozenset is not JSON serializable"
        )
    logged = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert logged and all(r.exc_info is not None for r in logged)
