"""Backfill on a fake clock: the occurrences in a past range are recorded and run oldest
first, one at a time (up to max_instances with overlap=allow), each with reason
`backfill` and the occurrence it stands for; more than 1,000 are refused with the count."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from engine.errors import InvalidField
from engine.interfaces import Outcome, RunRequest
from engine.model import Status
from engine.triggers import CronTrigger
from tests.engine_support import T0, Harness, Recorder, every, make_job, wait_for


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Concurrency:
    """A runner that notes how many runs overlap and in which order occurrences run."""

    def __init__(self, hold: float = 0.02) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.order: list[datetime | None] = []
        self.hold = hold
        self.runner = Recorder(self._run)

    def _run(self, request: RunRequest) -> Outcome:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.order.append(request.execution.scheduled_for)
        threading.Event().wait(self.hold)
        with self.lock:
            self.now -= 1
        return Outcome(Status.COMPLETED)


def test_occurrences_in_the_range_run_oldest_first_one_at_a_time() -> None:
    seen = Concurrency()
    with Harness(runner=seen.runner) as h:
        h.add(make_job("hourly", CronTrigger(minute="0"), paused=True))
        h.clock.set(later(86_400))
        runs = h.do(h.scheduler.backfill("hourly", later(3600), later(6 * 3600)))
        assert [r.scheduled_for for r in runs] == [later(k * 3600) for k in range(1, 7)]
        assert all(r.reason == "backfill" and r.status == Status.QUEUED for r in runs)
        h.settle()
        assert seen.order == [later(k * 3600) for k in range(1, 7)]
        assert seen.most == 1
        stored = h.executions("hourly")
        assert [e.status for e in stored] == [Status.COMPLETED] * 6
        assert stored[0].overlap_decision == (
            "queued: a backfill runs its occurrences one at a time; overlap=skip"
        )


def test_allow_runs_a_backfill_up_to_max_instances_at_once() -> None:
    seen = Concurrency(hold=0.2)
    with Harness(runner=seen.runner) as h:
        h.add(make_job("wide", every(60), paused=True, overlap="allow", max_instances=3))
        h.clock.set(later(3600))
        runs = h.do(h.scheduler.backfill("wide", T0, later(540)))
        assert len(runs) == 10  # 0, 60, ... 540: both ends count
        h.settle()
        assert seen.most == 3
        assert runs[0].overlap_decision.startswith("allowed: a backfill runs up to max_instances=3")


def test_more_than_1000_occurrences_are_refused_with_the_count() -> None:
    with Harness() as h:
        h.add(make_job("fast", every(1), paused=True))
        h.clock.set(T0 + timedelta(days=31))
        with pytest.raises(InvalidField, match=r"the range holds 1,001 occurrences"):
            h.do(h.scheduler.backfill("fast", T0, later(1000)))
        with pytest.raises(InvalidField, match=r"more than 100,000 occurrences"):
            h.do(h.scheduler.backfill("fast", T0, T0 + timedelta(days=30)))
        assert h.executions("fast") == []  # nothing recorded
        assert len(h.do(h.scheduler.backfill("fast", T0, later(999)))) == 1000


def test_a_range_in_the_future_or_upside_down_is_refused() -> None:
    with Harness() as h:
        h.add(make_job("j", every(60), paused=True))
        h.clock.set(later(600))
        with pytest.raises(InvalidField, match="must not be in the future"):
            h.do(h.scheduler.backfill("j", T0, later(601)))
        with pytest.raises(InvalidField, match="end must be later than start"):
            h.do(h.scheduler.backfill("j", later(300), later(300)))
        assert h.do(h.scheduler.backfill("j", later(1), later(59))) == []  # none fell there


def test_removing_the_job_cancels_the_rest_of_its_backfill() -> None:
    release = threading.Event()
    runner = Recorder(
        lambda r: Outcome(Status.COMPLETED) if release.wait(5) else Outcome(Status.FAILED)
    )
    with Harness(runner=runner) as h:
        h.add(make_job("doomed", every(60), paused=True))
        h.clock.set(later(3600))
        h.do(h.scheduler.backfill("doomed", T0, later(240)))  # 5 occurrences
        assert wait_for(lambda: len(runner.requests) == 1)
        h.do(h.scheduler.remove_job("doomed"))
        release.set()
        h.settle()
        assert sorted(h.statuses("doomed")) == ["cancelled"] * 4 + ["completed"]
        assert len(runner.requests) == 1
