"""Overlap policies on a fake clock: skip, queue, replace and allow, each decision
recorded on the execution it concerns."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from engine.errors import InvalidInput
from engine.interfaces import Outcome, RunRequest
from engine.model import Status
from tests.engine_support import T0, Harness, Recorder, every, make_job, wait_for


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Gate:
    """A runner whose first run waits for `release` (or for a cancel); later runs end at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.first = threading.Event()
        self._count = 0
        self._lock = threading.Lock()
        self.runner = Recorder(self._behave)

    def _behave(self, request: RunRequest) -> Outcome:
        with self._lock:
            self._count += 1
            number = self._count
        if number == 1:
            self.first.set()
            while not self.release.wait(0.01):
                if request.cancel.is_set():
                    return Outcome(Status.CANCELLED, error="cancelled")
        return Outcome(Status.COMPLETED, output=f"run {number}\n")


def test_skip_is_the_default_and_records_its_decision() -> None:
    gate = Gate()
    with Harness(runner=gate.runner) as h:
        job = h.add(make_job("s", every(10)))
        assert job.overlap == "skip"
        h.at(0)
        assert gate.first.wait(5)
        h.at(10)
        gate.release.set()
        h.settle()
        first, second = h.executions("s")
        assert first.overlap_decision == ""
        assert second.status == Status.SKIPPED
        assert second.overlap_decision.startswith("skipped: max_instances reached")
        assert "overlap=skip" in second.overlap_decision and second.error == second.overlap_decision


def test_queue_runs_the_fire_after_the_current_one_and_keeps_one_waiting() -> None:
    gate = Gate()
    with Harness(runner=gate.runner) as h:
        h.add(make_job("q", every(10), overlap="queue"))
        h.at(0)
        assert gate.first.wait(5)
        h.at(10)  # held: waits for the first run
        h.at(20)  # one is waiting already: skipped
        waiting = h.executions("q")[1]
        assert waiting.status == Status.QUEUED and waiting.started_at is None
        assert len(gate.runner.requests) == 1  # nothing started beside the first run
        gate.release.set()
        h.settle()
        first, queued, third = h.executions("q")
        assert [first.status, queued.status, third.status] == [
            Status.COMPLETED,
            Status.COMPLETED,
            Status.SKIPPED,
        ]
        assert queued.overlap_decision.startswith("queued: waits for one of the 1 active")
        assert queued.scheduled_for == later(10)
        assert queued.started_at is not None and first.completed_at is not None
        assert queued.started_at >= first.completed_at  # ran after, not beside
        assert "one is already waiting" in third.overlap_decision
        assert "overlap=queue" in third.error


def test_a_waiting_fire_is_cancelled_when_its_job_is_removed() -> None:
    gate = Gate()
    with Harness(runner=gate.runner) as h:
        h.add(make_job("qr", every(10), overlap="queue"))
        h.at(0)
        assert gate.first.wait(5)
        h.at(10)
        h.do(h.scheduler.remove_job("qr"))
        gate.release.set()
        h.settle()
        statuses = h.statuses("qr")
        assert statuses[1] == "cancelled", statuses
        assert len(gate.runner.requests) == 1


def test_a_waiting_fire_can_be_cancelled_by_id() -> None:
    gate = Gate()
    with Harness(runner=gate.runner) as h:
        h.add(make_job("qc", every(10), overlap="queue"))
        h.at(0)
        assert gate.first.wait(5)
        h.at(10)
        waiting = h.executions("qc")[1]
        cancelled = h.do(h.scheduler.cancel_execution(waiting.id))
        assert cancelled.status == Status.CANCELLED
        gate.release.set()
        h.settle()
        assert h.statuses("qc") == ["completed", "cancelled"]
        assert len(gate.runner.requests) == 1


def test_replace_cancels_the_running_execution_and_starts_the_new_one() -> None:
    gate = Gate()
    with Harness(runner=gate.runner) as h:
        h.add(make_job("r", every(10), overlap="replace"))
        h.at(0)
        assert gate.first.wait(5)
        h.at(10)
        h.settle()  # the first run stops on its cancel flag; release is never set
        old, new = h.executions("r")
        assert old.status == Status.CANCELLED
        assert old.error.startswith(f"cancelled: replaced by execution {new.id} (overlap=replace)")
        assert new.status == Status.COMPLETED
        assert new.overlap_decision == (
            f"replaced: cancelled execution(s) {old.id} to start this one; overlap=replace"
        )


def test_allow_overlaps_up_to_max_instances_then_skips() -> None:
    release = threading.Event()
    runner = Recorder(
        lambda r: Outcome(Status.COMPLETED) if release.wait(5) else Outcome(Status.FAILED)
    )
    with Harness(runner=runner) as h:
        h.add(make_job("a", every(10), overlap="allow", max_instances=2))
        h.at(0)
        h.at(10)
        assert wait_for(lambda: len(runner.requests) == 2)
        h.at(20)
        release.set()
        h.settle()
        first, second, third = h.executions("a")
        assert [first.status, second.status, third.status] == [
            Status.COMPLETED,
            Status.COMPLETED,
            Status.SKIPPED,
        ]
        assert first.overlap_decision == ""
        assert second.overlap_decision == (
            "allowed: 1 other execution(s) of this job active, max_instances=2"
        )
        assert third.overlap_decision.startswith("skipped:") and "overlap=allow" in third.error


def test_an_unknown_policy_is_refused_by_the_engine() -> None:
    with Harness() as h, pytest.raises(InvalidInput, match="overlap must be one of"):
        h.add(make_job("x", every(10), overlap="sometimes"))


def test_overlap_and_decisions_survive_the_store() -> None:
    gate = Gate()
    with Harness(runner=gate.runner) as h:
        h.add(make_job("st", every(10), overlap="queue"))
        h.at(0)
        assert gate.first.wait(5)
        h.at(10)
        gate.release.set()
        h.settle()
        assert h.store.get_job("st").overlap == "queue"
        stored = h.store.get_execution(h.executions("st")[1].id)
        assert stored.overlap_decision.startswith("queued:")
