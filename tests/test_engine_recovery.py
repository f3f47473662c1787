"""Restart recovery: abandoned runs, fires missed while down, date jobs that already ran."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.model import Job, Status
from engine.records import new_execution
from engine.scheduling.recovery import ABANDONED_MESSAGE
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, date_at, every, make_job


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stored(store: MemoryStore, job: Job, next_run_time: datetime | None) -> Job:
    job.next_run_time = next_run_time
    store.add_job(job)
    return job


def test_executions_left_running_are_abandoned() -> None:
    store = MemoryStore()
    job = stored(store, make_job("a", every(3600)), later(3600))
    for status in (Status.RUNNING, Status.QUEUED, Status.COMPLETED):
        store.add_execution(new_execution(job, "class", status, T0))
    with Harness(store=store) as h:
        recovery = h.scheduler.start(loop_thread=False)
        assert recovery.abandoned == 2 and recovery.jobs == 1
        assert sorted(h.statuses("a")) == ["abandoned", "abandoned", "completed"]
        assert all(
            e.error == ABANDONED_MESSAGE for e in h.executions("a") if e.status == Status.ABANDONED
        )


def test_fires_missed_while_down_follow_each_jobs_policy() -> None:
    store = MemoryStore()
    stored(store, make_job("coalesced", every(60), coalesce=True, misfire_grace_time=30), T0)
    stored(store, make_job("each", every(60), coalesce=False, misfire_grace_time=30), T0)
    stored(store, make_job("any-delay", every(60), coalesce=True, misfire_grace_time=None), T0)
    with Harness(store=store) as h:
        h.clock.set(later(3650))  # down for an hour; the 3600 fire is 50 s late
        h.scheduler.start(loop_thread=False)
        h.at(3650)
        h.settle()
        (one,) = h.executions("coalesced")
        assert one.status == Status.MISSED and "coalesced 61 missed fire times" in one.error
        each = h.executions("each")
        assert len(each) == 61 and {e.status for e in each} == {Status.MISSED}
        (ran,) = h.executions("any-delay")
        assert ran.status == Status.COMPLETED and ran.scheduled_for == later(3600)
        assert ran.output.startswith("[cronwell] coalesced 61 fire times")
        for job_id in ("coalesced", "each", "any-delay"):
            assert store.get_job(job_id).next_run_time == later(3660)


def test_a_date_job_that_already_ran_never_runs_again_after_restart() -> None:
    store = MemoryStore()
    with Harness(store=store) as first:
        first.scheduler.start(loop_thread=False)
        first.add(make_job("once", date_at(T0)))
        first.at(0)
        first.settle()
    assert store.get_job("once").next_run_time is None
    with Harness(store=store) as second:
        recovery = second.scheduler.start(loop_thread=False)
        assert recovery.jobs == 0
        second.at(3600)
        second.settle()
        assert second.runner.requests == []
        assert second.statuses("once") == ["completed"]


def test_paused_jobs_stay_off_the_heap_and_scheduled_retries_come_back() -> None:
    store = MemoryStore()
    job = stored(store, make_job("r", date_at(T0)), None)
    stored(store, make_job("p", every(60), paused=True), None)
    failed = new_execution(job, "class", Status.FAILED, T0)
    store.add_execution(failed)
    retry = new_execution(
        job, "class", Status.SCHEDULED, T0, scheduled_for=later(30), reason="retry"
    )
    retry.attempt, retry.retry_of = 2, failed.id
    store.add_execution(retry)
    with Harness(store=store) as h:
        recovery = h.scheduler.start(loop_thread=False)
        assert (recovery.jobs, recovery.retries) == (0, 1)
        assert h.at(10) == 20.0
        h.at(30)
        h.settle()
        assert store.get_execution(retry.id).status == Status.COMPLETED
        assert h.runner.job_ids == ["r"]
