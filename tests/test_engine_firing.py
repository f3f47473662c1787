"""Fires on a fake clock: ordering, misfire, coalesce, max_instances, backlog, claims."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from engine import events as ev
from engine.errors import StoreError
from engine.events import Event
from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Status
from engine.triggers import CronTrigger
from stores.base import FireClaim
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, Recorder, date_at, every, make_job, wait_for


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_jobs_fire_in_time_order_and_date_jobs_stay_stored() -> None:
    with Harness(pool_size=1) as h:
        for job_id, seconds in (("a", 30), ("b", 10), ("c", 20)):
            h.add(make_job(job_id, date_at(later(seconds))))
        assert h.at(5) == 5.0  # nothing due; the next fire is 5 s away
        assert h.runner.requests == []
        assert h.at(40) is None  # all fired; nothing left on the heap
        h.settle()
        assert h.runner.job_ids == ["b", "c", "a"]
        for job_id in "abc":
            (execution,) = h.executions(job_id)
            assert execution.status == Status.COMPLETED and execution.output == "ok\n"
            job = h.store.get_job(job_id)
            assert job.next_run_time is None  # done, but kept with its history
            assert job.total_executions == 1
        h.at(100)
        h.settle()
        assert len(h.runner.requests) == 3  # a date job never fires twice


def test_a_fire_is_recorded_before_it_runs_with_the_job_labels() -> None:
    seen: list[Execution] = []
    store = MemoryStore()

    def runner(request: RunRequest) -> Outcome:
        seen.append(store.get_execution(request.execution.id))
        return Outcome(Status.COMPLETED, return_value={"n": 1}, exit_code=0)

    with Harness(runner=runner, store=store) as h:
        h.add(make_job("a", date_at(later(10)), owner="u1", name="nightly"))
        h.at(10)
        h.settle()
        # written at the claim, before the run; the recorder thread marks it running
        # a moment after the start (engine/running/recorder.py), so either may be seen here
        assert seen[0].status in (Status.QUEUED, Status.RUNNING)
        assert seen[0].scheduled_for == later(10)
        (done,) = h.executions("a")
        assert done.started_at == later(10)
        assert done.scheduled_for == later(10) and done.reason == "schedule"
        assert (done.job_name, done.owner, done.job_kind, done.job_target) == (
            "nightly",
            "u1",
            "class",
            "tests.fake.Job",
        )
        assert done.return_value == {"n": 1} and done.exit_code == 0


def test_interval_job_reschedules_and_run_once_reports_the_wait() -> None:
    with Harness() as h:
        added = h.add(make_job("tick", every(60)))
        assert added.next_run_time == T0
        assert h.at(0) == 60.0
        h.settle()
        assert h.store.get_job("tick").next_run_time == later(60)
        assert h.at(61) == 59.0
        h.settle()
        assert h.statuses("tick") == ["completed", "completed"]
        assert [e.scheduled_for for e in h.executions("tick")] == [T0, later(60)]


def test_a_fire_later_than_the_grace_is_recorded_missed_not_run() -> None:
    with Harness() as h:
        missed: list[Event] = []
        h.scheduler.events.subscribe(missed.append, {ev.JOB_MISSED})
        h.add(make_job("late", date_at(later(0)), misfire_grace_time=60))
        h.at(125)
        h.settle()
        assert h.runner.requests == []
        (record,) = h.executions("late")
        assert record.status == Status.MISSED
        assert "125.000 s late" in record.error and "misfire_grace_time 60 s" in record.error
        assert wait_for(lambda: len(missed) == 1)
        assert h.store.get_job("late").next_run_time is None


def test_coalesce_runs_once_and_notes_how_many_fires_it_merged() -> None:
    with Harness() as h:
        h.add(make_job("c", every(60), coalesce=True, misfire_grace_time=100))
        h.at(300)  # fires 0, 60, ... 300 are all due
        h.settle()
        (run,) = h.executions("c")
        assert run.status == Status.COMPLETED and run.scheduled_for == later(300)
        assert run.output.startswith("[cronwell] coalesced 6 fire times")
        assert run.output.endswith("ok\n")
        assert h.store.get_job("c").next_run_time == later(360)


def test_without_coalesce_each_fire_runs_or_is_missed() -> None:
    with Harness() as h:
        h.add(make_job("n", every(60), coalesce=False, misfire_grace_time=100, max_instances=5))
        h.at(300)
        h.settle()
        records = h.executions("n")
        by_time = {e.scheduled_for: e.status for e in records}
        assert by_time == {
            later(0): Status.MISSED,
            later(60): Status.MISSED,
            later(120): Status.MISSED,
            later(180): Status.MISSED,
            later(240): Status.COMPLETED,
            later(300): Status.COMPLETED,
        }


def test_max_instances_records_a_skipped_fire() -> None:
    release = threading.Event()
    runner = Recorder(
        lambda request: Outcome(Status.COMPLETED) if release.wait(5) else Outcome(Status.FAILED)
    )
    with Harness(runner=runner) as h:
        reached: list[Event] = []
        h.scheduler.events.subscribe(reached.append, {ev.MAX_INSTANCES_REACHED})
        h.add(make_job("busy", every(10), max_instances=1))
        h.at(0)
        assert runner.started.wait(5)
        h.at(10)  # the first run is still going
        release.set()
        h.settle()
        assert h.statuses("busy") == ["completed", "skipped"]
        skipped = h.executions("busy")[1]
        assert "max_instances reached" in skipped.error and skipped.scheduled_for == later(10)
        assert wait_for(lambda: len(reached) == 1)
        assert h.store.get_job("busy").next_run_time == later(20)


def test_a_coalesced_fire_skipped_by_max_instances_keeps_its_count() -> None:
    """Fires that a late node coalesces, then skips because a run is still going, are
    accounted for by the skipped record (found by three nodes on a slow Mongo server:
    the folded fire times were otherwise on no record at all)."""
    release = threading.Event()
    runner = Recorder(
        lambda request: Outcome(Status.COMPLETED) if release.wait(5) else Outcome(Status.FAILED)
    )
    with Harness(runner=runner) as h:
        h.add(make_job("busy", every(10), max_instances=1, misfire_grace_time=100))
        h.at(0)
        assert runner.started.wait(5)
        h.at(30)  # fires 10, 20 and 30 fell due while the first run still goes
        release.set()
        h.settle()
        assert h.statuses("busy") == ["completed", "skipped"]
        skipped = h.executions("busy")[1]
        assert skipped.scheduled_for == later(30) and "max_instances reached" in skipped.error
        assert skipped.output.startswith("[cronwell] coalesced 3 fire times")


def test_a_full_backlog_records_skipped_fires_instead_of_queueing() -> None:
    release = threading.Event()
    runner = Recorder(
        lambda request: Outcome(Status.COMPLETED) if release.wait(5) else Outcome(Status.FAILED)
    )
    with Harness(runner=runner, pool_size=1, backlog_limit=1) as h:
        for job_id in ("a", "b", "c"):
            h.add(make_job(job_id, date_at(T0)))
        h.at(0)
        release.set()
        h.settle()
        statuses = sorted(str(e.status) for e in h.executions())
        assert statuses == ["completed", "skipped", "skipped"]
        assert all(
            "worker backlog is full" in e.error
            for e in h.executions()
            if e.status == Status.SKIPPED
        )


def test_a_lost_claim_reloads_the_job_instead_of_firing() -> None:
    with Harness() as h:
        h.add(make_job("shared", every(60)))
        # another engine claims the fire at T0 first
        assert h.store.claim_fire("shared", T0, later(60), [])
        h.at(0)
        h.settle()
        assert h.runner.requests == []
        assert h.at(60) == 60.0  # rescheduled from what the store says
        h.settle()
        assert h.runner.job_ids == ["shared"]


class FlakyClaims(MemoryStore):
    """Fails the first `failures` claim_fires calls like a lost connection would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def claim_fires(self, claims: list[FireClaim]) -> list[bool]:  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise StoreError("connection reset")
        return super().claim_fires(claims)


def test_a_store_error_while_claiming_is_retried_after_a_backoff() -> None:
    with Harness(store=FlakyClaims(failures=2)) as h:
        h.add(make_job("j", date_at(T0)))
        assert h.at(0) == pytest.approx(0.05)  # first failure: look again in 50 ms
        assert h.at(0.05) == pytest.approx(0.1)  # second failure: backoff doubles
        assert h.at(0.15) is None
        h.settle()
        assert h.statuses("j") == ["completed"]
        assert h.executions("j")[0].scheduled_for == T0


def test_submitted_started_and_executed_events_follow_a_fire() -> None:
    with Harness() as h:
        seen: list[Event] = []
        h.scheduler.events.subscribe(seen.append)
        h.add(make_job("e", date_at(T0)))
        h.at(0)
        h.settle()
        assert wait_for(lambda: len(seen) == 4)
        assert [e.kind for e in seen] == [
            ev.JOB_ADDED,
            ev.EXECUTION_SUBMITTED,
            ev.EXECUTION_STARTED,
            ev.EXECUTION_EXECUTED,
        ]
        assert seen[1].execution is not None and seen[1].execution.status == Status.QUEUED
        started = seen[2].execution
        assert started is not None and started.status == Status.RUNNING
        assert started.started_at is not None and started.completed_at is None
        assert seen[3].execution is not None and seen[3].execution.status == Status.COMPLETED


def test_events_of_many_instant_runs_keep_each_runs_order() -> None:
    """Workers finish no-op runs at once; every run's events still arrive queued,
    running, completed (the loop emits before it hands the fires over)."""
    with Harness(pool_size=4) as h:
        seen: list[Event] = []
        h.scheduler.events.subscribe(seen.append)
        for number in range(200):
            h.add(make_job(f"j{number}", date_at(T0)))
        h.at(0)
        h.settle()
        assert wait_for(lambda: len(seen) == 200 * 4)
        by_execution: dict[str, list[str]] = {}
        for event in seen:
            if event.execution is not None:
                by_execution.setdefault(event.execution.id, []).append(event.kind)
        assert len(by_execution) == 200
        expected = [ev.EXECUTION_SUBMITTED, ev.EXECUTION_STARTED, ev.EXECUTION_EXECUTED]
        assert all(kinds == expected for kinds in by_execution.values())


def test_a_cron_job_fires_on_its_minutes() -> None:
    with Harness() as h:
        h.add(make_job("cron", CronTrigger(minute="*/15")))
        for minute in range(0, 61, 5):
            h.at(minute * 60)
            h.settle()
        assert [e.scheduled_for for e in h.executions("cron")] == [
            later(0),
            later(15 * 60),
            later(30 * 60),
            later(45 * 60),
            later(60 * 60),
        ]
        assert h.store.get_job("cron").next_run_time == later(75 * 60)
