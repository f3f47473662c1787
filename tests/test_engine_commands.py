"""Commands through the queue: add, modify, pause/resume, remove, run now, refusals."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from engine import events as ev
from engine.clock import FakeClock
from engine.errors import EngineBusy, EngineStopped, InvalidInput, JobExists, JobNotFound
from engine.events import Event
from engine.model import Status
from engine.scheduler import Scheduler
from engine.scheduling.commands import AddJob, CommandQueue
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, Recorder, date_at, every, make_job, wait_for


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_add_computes_the_first_fire_and_refuses_duplicates() -> None:
    with Harness() as h:
        job = h.add(make_job("a", every(60)))
        assert job.next_run_time == T0
        assert job.created_at == job.updated_at == h.clock.now()
        with pytest.raises(JobExists):
            h.add(make_job("a", every(30)))
        replaced = h.do(h.scheduler.add_job(make_job("a", every(30, start=later(5))), replace=True))
        assert replaced.next_run_time == later(5)
        h.at(5)
        h.settle()
        assert [e.scheduled_for for e in h.executions("a")] == [later(5)]


def test_add_refuses_settings_the_engine_cannot_honour() -> None:
    with Harness() as h:
        for bad in (
            {"max_instances": 0},
            {"retries": -1},
            {"retry_backoff": "linear"},
            {"timeout": 0},
        ):
            with pytest.raises(InvalidInput):
                h.add(make_job("bad", every(60), **bad))
        assert h.store.list_jobs() == []


def test_a_past_date_is_due_at_once_and_follows_the_misfire_policy() -> None:
    with Harness() as h:
        h.clock.set(later(3600))
        job = h.add(make_job("old", date_at(T0), misfire_grace_time=60))
        assert job.next_run_time == T0  # as the scripts surface shows it
        h.settle()
        assert h.statuses("old") == ["missed"]


def test_pause_stops_fires_and_resume_recomputes_from_now() -> None:
    with Harness() as h:
        h.add(make_job("p", every(60)))
        paused = h.do(h.scheduler.pause_job("p"))
        assert paused.paused and paused.next_run_time is None
        assert h.at(125) is None  # nothing scheduled, nothing fired
        resumed = h.do(h.scheduler.resume_job("p"))
        assert not resumed.paused and resumed.next_run_time == later(180)
        assert h.store.get_job("p").next_run_time == later(180)
        h.at(180)
        h.settle()
        assert [e.scheduled_for for e in h.executions("p")] == [later(180)]


def test_modify_changes_fields_and_a_new_trigger_moves_the_next_fire() -> None:
    with Harness() as h:
        h.add(make_job("m", every(60, start=later(600))))
        renamed = h.do(h.scheduler.modify_job("m", name="renamed", max_instances=3))
        assert renamed.name == "renamed" and renamed.next_run_time == later(600)
        moved = h.do(h.scheduler.modify_job("m", trigger=date_at(later(30))))
        assert moved.next_run_time == later(30)
        h.at(30)
        h.settle()
        (run,) = h.executions("m")
        assert run.job_name == "renamed"
        earlier = h.do(h.scheduler.modify_job("m", trigger=every(10), next_run_time=later(31)))
        assert earlier.next_run_time == later(31)
        with pytest.raises(InvalidInput, match="colour"):
            h.do(h.scheduler.modify_job("m", colour="red"))
        with pytest.raises(InvalidInput, match="id"):
            h.do(h.scheduler.modify_job("m", id="other"))
        with pytest.raises(InvalidInput, match="total_executions cannot be changed"):
            h.do(h.scheduler.modify_job("m", total_executions=0))
        with pytest.raises(InvalidInput, match="last_run_time cannot be changed"):
            h.do(h.scheduler.modify_job("m", last_run_time=later(1)))
        with pytest.raises(JobNotFound):
            h.do(h.scheduler.modify_job("nope", name="x"))


def test_remove_stops_fires_and_keeps_history() -> None:
    with Harness() as h:
        h.add(make_job("r", every(60)))
        h.at(0)
        h.settle()
        assert h.do(h.scheduler.remove_job("r")) is None
        h.at(600)
        h.settle()
        assert h.statuses("r") == ["completed"]  # history stays
        with pytest.raises(JobNotFound):
            h.do(h.scheduler.remove_job("r"))


def test_run_now_queues_a_manual_execution_even_when_paused() -> None:
    with Harness() as h:
        h.add(make_job("n", every(3600, start=later(3600))))
        h.do(h.scheduler.pause_job("n"))
        execution = h.do(h.scheduler.run_job_now("n"))
        assert execution.status == Status.QUEUED and execution.reason == "manual"
        assert execution.scheduled_for is None
        h.settle()
        (done,) = h.executions("n")
        assert done.id == execution.id and done.status == Status.COMPLETED
        assert h.store.get_job("n").paused
        with pytest.raises(JobNotFound):
            h.do(h.scheduler.run_job_now("missing"))


def test_job_events_are_emitted() -> None:
    with Harness() as h:
        seen: list[Event] = []
        h.scheduler.events.subscribe(seen.append)
        h.add(make_job("e", every(3600)))
        h.do(h.scheduler.pause_job("e"))
        h.do(h.scheduler.resume_job("e"))
        h.do(h.scheduler.modify_job("e", name="x"))
        h.do(h.scheduler.remove_job("e"))
        kinds = [ev.JOB_ADDED, ev.JOB_PAUSED, ev.JOB_RESUMED, ev.JOB_MODIFIED, ev.JOB_REMOVED]
        assert wait_for(lambda: len(seen) == len(kinds))
        assert [e.kind for e in seen] == kinds
        assert seen[0].job is not None and seen[0].job.id == "e"


def test_a_full_command_queue_refuses_with_engine_busy() -> None:
    scheduler = Scheduler(MemoryStore(), Recorder(), clock=FakeClock(T0), queue_size=2)
    try:
        first = scheduler.add_job(make_job("a", every(60)))
        scheduler.add_job(make_job("b", every(60)))
        refused = scheduler.add_job(make_job("c", every(60)))
        assert isinstance(refused.exception(timeout=0), EngineBusy)
        scheduler.run_once()
        assert first.result(timeout=1).id == "a"
        assert not scheduler.add_job(make_job("c", every(60))).done()  # room again
    finally:
        scheduler.shutdown(timeout=1)


def test_commands_after_shutdown_fail_with_engine_stopped() -> None:
    scheduler = Scheduler(MemoryStore(), Recorder(), clock=FakeClock(T0))
    pending = scheduler.add_job(make_job("a", every(60)))
    scheduler.shutdown(timeout=1)
    assert isinstance(pending.exception(timeout=0), EngineStopped)
    assert isinstance(scheduler.pause_job("a").exception(timeout=0), EngineStopped)
    with pytest.raises(EngineStopped):
        scheduler.run_once()
    scheduler.shutdown(timeout=1)  # twice is fine


def test_a_cancelled_future_withdraws_its_command() -> None:
    with Harness() as h:
        future = h.scheduler.add_job(make_job("w", every(60)))
        assert future.cancel()
        h.at(0)
        assert h.store.list_jobs() == []


def test_the_queue_bound_does_not_apply_to_internal_notices() -> None:
    queue = CommandQueue(maxsize=1)
    queue.put(AddJob(make_job("a", every(60))))
    assert isinstance(queue.put(AddJob(make_job("b", every(60)))).exception(timeout=0), EngineBusy)
    assert queue.post_internal(AddJob(make_job("c", every(60))))
    assert len(queue.drain()) == 2
    queue.close()
    assert not queue.post_internal(AddJob(make_job("d", every(60))))
