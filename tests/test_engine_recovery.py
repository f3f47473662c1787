"""Restart recovery: abandoned runs, fires missed while down, date jobs that already ran."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.interfaces import Outcome
from engine.model import Job, Status
from engine.records import new_execution
from engine.scheduling.recovery import ABANDONED_MESSAGE
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, Recorder, date_at, every, make_job


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stored(store: MemoryStore, job: Job, next_run_time: datetime | None) -> Job:
    job.next_run_time = next_run_time
    store.add_job(job)
    return job


def test_runs_left_running_are_abandoned_and_unstarted_fires_run_again() -> None:
    store = MemoryStore()
    job = stored(store, make_job("a", every(3600)), later(3600))
    executions = {}
    for status in (Status.RUNNING, Status.QUEUED, Status.COMPLETED):
        executions[status] = new_execution(job, "class", status, T0, scheduled_for=T0)
        store.add_execution(executions[status])
    with Harness(store=store) as h:
        h.clock.set(later(10))
        recovery = h.scheduler.start(loop_thread=False)
        assert recovery.abandoned == 1 and recovery.jobs == 1
        assert [i.execution.id for i in recovery.requeued] == [executions[Status.QUEUED].id]
        h.settle()
        assert sorted(h.statuses("a")) == ["abandoned", "completed", "completed"]
        abandoned = store.get_execution(executions[Status.RUNNING].id)
        assert abandoned.status == Status.ABANDONED and abandoned.error == ABANDONED_MESSAGE
        rerun = store.get_execution(executions[Status.QUEUED].id)
        assert rerun.status == Status.COMPLETED and rerun.scheduled_for == T0
        assert rerun.output.startswith("[cronwell] queued again at ")
        assert "never started" in rerun.output
        assert len(h.runner.requests) == 1


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


def test_the_start_up_load_shows_each_job_holding_an_observed_field_to_its_observers_once(
    monkeypatch: Any,
) -> None:
    """Paged (three jobs a page here), each job that holds a history_limit or a notify
    once, with both (the service's observers learn from those only): active, paused
    and finished ones alike, while only the active ones go on the heap; a job holding
    neither is not shown."""
    monkeypatch.setattr("engine.scheduling.recovery.LOAD_PAGE", 3)
    store = MemoryStore()
    notify = {"on": ["failed"], "webhook": "http://127.0.0.1:9/hook"}
    active = [
        stored(store, make_job(f"a{i}", every(60), history_limit=i + 1), later(60 + i))
        for i in range(5)
    ]
    stored(store, make_job("p", every(60), paused=True, notify=notify), later(60))
    stored(store, make_job("d", date_at(T0), history_limit=3, notify=notify), None)
    stored(store, make_job("plain", every(60)), later(60))
    seen: list[dict[str, Any]] = []
    also: list[str] = []
    with Harness(store=store) as h:
        recovery = h.scheduler.start(
            loop_thread=False,
            observers=(lambda r: seen.append(dict(r)), lambda r: also.append(r["id"])),
            observed_fields=("history_limit", "notify"),
        )
        assert recovery.jobs == len(active) + 1 == h.scheduler.scheduled_jobs
        assert h.at(0) == 60.0
    by_id = {r["id"]: r for r in seen}
    assert len(seen) == len(by_id) and sorted(also) == sorted(by_id)
    assert by_id == {
        **{j.id: {"id": j.id, "history_limit": j.history_limit, "notify": None} for j in active},
        "p": {"id": "p", "history_limit": None, "notify": notify},
        "d": {"id": "d", "history_limit": 3, "notify": notify},
    }


def test_observers_wanting_other_fields_see_every_stored_job_once(monkeypatch: Any) -> None:
    """Fields the rows do not show their observers (`put_rows`) take the records' way:
    every job, with those fields."""
    monkeypatch.setattr("engine.scheduling.recovery.LOAD_PAGE", 3)
    store = MemoryStore()
    for i in range(4):
        stored(store, make_job(f"a{i}", every(60), description=f"d{i}"), later(60))
    stored(store, make_job("p", every(60), paused=True, description="dp"), later(60))
    seen: dict[str, str] = {}
    with Harness(store=store) as h:
        recovery = h.scheduler.start(
            loop_thread=False,
            observers=(lambda r: seen.setdefault(r["id"], r["description"]),),
            observed_fields=("description", "notify"),
        )
        assert recovery.jobs == 4
    assert seen == {"a0": "d0", "a1": "d1", "a2": "d2", "a3": "d3", "p": "dp"}


class DurableMemoryStore(MemoryStore):
    """The memory store, treated as one that survives a crash: workers then store
    `running` before they start a run, as they do on SQLite, Mongo and Oracle."""

    durable = True


def test_one_off_fires_claimed_before_a_crash_run_once_within_their_grace() -> None:
    store = DurableMemoryStore()
    for number in range(5):  # what the loop's claims leave when the service dies next
        job = stored(store, make_job(f"once{number}", date_at(T0), misfire_grace_time=60), T0)
        claimed = new_execution(job, "class", Status.QUEUED, T0, scheduled_for=T0)
        assert store.claim_fire(job.id, T0, None, [claimed])
    assert all(store.get_job(f"once{n}").next_run_time is None for n in range(5))
    with Harness(store=store) as second:
        second.clock.set(later(2))
        recovery = second.scheduler.start(loop_thread=False)
        assert len(recovery.requeued) == 5 and recovery.ended == ()
        second.settle()
        second.at(3)
        second.settle()
        assert sorted(second.runner.job_ids) == [f"once{n}" for n in range(5)]
        for number in range(5):
            (execution,) = second.executions(f"once{number}")
            assert execution.status == Status.COMPLETED and execution.scheduled_for == T0
    with Harness(store=store) as third:  # nothing is left to run again
        assert third.scheduler.start(loop_thread=False).requeued == ()


def test_unstarted_fires_beyond_their_grace_are_recorded_missed_not_run() -> None:
    store = DurableMemoryStore()
    job = stored(store, make_job("late", date_at(T0), misfire_grace_time=5), None)
    queued = new_execution(job, "class", Status.QUEUED, T0, scheduled_for=T0)
    store.add_execution(queued)
    with Harness(store=store) as h:
        h.clock.set(later(6))
        recovery = h.scheduler.start(loop_thread=False)
        assert recovery.requeued == () and len(recovery.ended) == 1
        h.at(7)
        h.settle()
        assert h.runner.requests == []
        (missed,) = h.executions("late")
        assert missed.id == queued.id and missed.status == Status.MISSED
        assert missed.error.startswith(f"missed: due at {T0.isoformat()}, 6.000 s late")
        assert "never started" in missed.output
        assert store.get_job("late").total_executions == 0


def test_unstarted_manual_runs_and_retries_run_however_late_paused_fires_do_not() -> None:
    store = DurableMemoryStore()
    job = stored(store, make_job("p", every(3600), misfire_grace_time=1, paused=True), None)
    manual = new_execution(job, "class", Status.QUEUED, T0, reason="manual")
    retry = new_execution(job, "class", Status.QUEUED, T0, scheduled_for=T0, reason="retry")
    scheduled = new_execution(job, "class", Status.QUEUED, T0, scheduled_for=T0)
    for execution in (manual, retry, scheduled):
        store.add_execution(execution)
    with Harness(store=store) as h:
        h.clock.set(later(3600))
        h.scheduler.start(loop_thread=False)
        h.settle()
        assert len(h.runner.requests) == 2
        assert store.get_execution(manual.id).status == Status.COMPLETED
        assert store.get_execution(retry.id).status == Status.COMPLETED
        cancelled = store.get_execution(scheduled.id)
        assert cancelled.status == Status.CANCELLED and "paused" in cancelled.error


def test_a_run_is_stored_running_before_it_starts_on_a_durable_store() -> None:
    store = DurableMemoryStore()
    seen: list[Status] = []

    def look(request: Any) -> Outcome:
        seen.append(store.get_execution(request.execution.id).status)
        return Outcome(Status.COMPLETED)

    with Harness(runner=Recorder(look), store=store) as h:
        h.scheduler.start(loop_thread=False)
        h.add(make_job("w", date_at(T0)))
        h.at(0)
        h.settle()
    assert seen == [Status.RUNNING]


def test_leftover_processes_are_killed_before_their_runs_are_marked() -> None:
    store = MemoryStore()
    job = stored(store, make_job("k", every(3600)), later(3600))
    running = new_execution(job, "class", Status.RUNNING, T0)
    store.add_execution(running)
    calls: list[tuple[set[str], Status]] = []

    def kill(ids: Any) -> int:
        calls.append((set(ids), store.get_execution(running.id).status))
        return 3

    with Harness(store=store, kill_leftovers=kill) as h:
        recovery = h.scheduler.start(loop_thread=False)
    assert calls == [({running.id}, Status.RUNNING)]
    assert recovery.killed == 3 and recovery.abandoned == 1


def test_runs_abandoned_at_start_are_announced_as_failed_events_saying_abandoned() -> None:
    """A job's `notify` hears of an abandoned run through the event bus like any other
    unhappy end (jobs/notify.py listens for execution_failed)."""
    import threading

    from engine import events as ev

    store = MemoryStore()
    job = stored(store, make_job("a", every(3600)), later(3600))
    left = new_execution(job, "class", Status.RUNNING, T0, scheduled_for=T0)
    store.add_execution(left)
    heard: list[ev.Event] = []
    arrived = threading.Event()

    def listen(event: ev.Event) -> None:
        heard.append(event)
        arrived.set()

    with Harness(store=store) as h:
        h.scheduler.events.subscribe(listen, [ev.EXECUTION_FAILED])
        h.clock.set(later(10))
        recovery = h.scheduler.start(loop_thread=False)
        assert [e.id for e in recovery.abandoned_runs] == [left.id]
        assert arrived.wait(5), "no event for the abandoned run"
    (event,) = heard
    assert event.kind == ev.EXECUTION_FAILED and event.job_id == "a"
    assert event.execution is not None and event.execution.id == left.id
    assert event.execution.status == Status.ABANDONED
    assert event.execution.error == ABANDONED_MESSAGE
