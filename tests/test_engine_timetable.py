"""Timetable: slots only for jobs that will fire, shared triggers, retries on the heap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.model import Execution, Job, Status
from engine.records import new_execution
from engine.scheduling.timetable import JobSlot, Timetable
from engine.triggers import CronTrigger
from tests.engine_support import T0, date_at, make_job


def scheduled(job_id: str, trigger: Any, **fields: Any) -> Job:
    job = make_job(job_id, trigger, **fields)
    job.next_run_time = T0
    return job


def test_only_jobs_that_will_fire_get_a_slot() -> None:
    table = Timetable()
    assert table.put_job(scheduled("a", date_at(T0))) is not None
    assert table.put_job(scheduled("p", date_at(T0), paused=True)) is None
    done = make_job("d", date_at(T0))  # next_run_time None: fired already
    assert table.put_job(done) is None
    assert set(table.jobs) == {"a"} and len(table) == 1


def test_equal_cron_triggers_are_shared_between_slots() -> None:
    table = Timetable()
    first = table.put_job(scheduled("a", CronTrigger(minute="*/5")))
    second = table.put_job(scheduled("b", CronTrigger(minute="*/5")))
    other = table.put_job(scheduled("c", CronTrigger(minute="*/7")))
    assert isinstance(first, JobSlot) and isinstance(second, JobSlot) and isinstance(other, JobSlot)
    assert first.trigger is second.trigger
    assert other.trigger is not first.trigger


def test_due_jobs_and_retries_come_off_the_heap_in_time_order() -> None:
    table = Timetable()
    table.put_job(scheduled("a", date_at(T0)))
    job = make_job("r", date_at(T0))
    retry = new_execution(
        job, "class", Status.SCHEDULED, T0, scheduled_for=T0 - timedelta(seconds=1)
    )
    table.put_retry(retry)
    assert table.next_fire_ts() == (T0 - timedelta(seconds=1)).timestamp()
    first = table.pop_due(T0.timestamp())
    second = table.pop_due(T0.timestamp())
    assert isinstance(first, Execution) and first.id == retry.id
    assert isinstance(second, JobSlot) and second.id == "a"
    assert table.pop_due(T0.timestamp()) is None
    table.put_retry(retry)
    assert table.drop_retry(retry.id) is retry
    assert table.next_fire_ts() is None


def _record(job: Job) -> dict[str, Any]:
    """The record a store's `job_records` gives for `job` (what from_record takes)."""
    return Job.from_record(job.to_record()).to_record()


def test_a_slot_from_a_stored_record_is_the_slot_of_its_job_field_by_field() -> None:
    """The start-up load builds slots straight from records (`put_record`); every slot
    field must match what `put_job` makes of the same job, so a field added to JobSlot
    that `of_record` forgets fails here, not in production."""
    jobs = [
        scheduled("a", CronTrigger(minute="*/5"), owner="u1", name="first"),
        scheduled("b", CronTrigger(minute="*/5"), misfire_grace_time=None, coalesce=False),
        scheduled("c", date_at(T0), max_instances=3, overlap="queue", owner=None),
    ]
    by_job, by_record = Timetable(), Timetable()
    for job in jobs:
        made, loaded = by_job.put_job(job), by_record.put_record(_record(job))
        assert made is not None and loaded is not None
        for name in JobSlot.__slots__:
            assert getattr(loaded, name) == getattr(made, name), name
    assert by_record.jobs["a"].trigger is by_record.jobs["b"].trigger  # shared, as put_job's
    assert by_record.next_fire_ts() == by_job.next_fire_ts() and len(by_record) == 3


def test_a_record_missing_optional_fields_reads_the_job_defaults() -> None:
    record = _record(scheduled("a", CronTrigger(minute="*/5")))
    for name in ("misfire_grace_time", "coalesce", "max_instances", "overlap", "owner"):
        del record[name]
    slot = Timetable().put_record(record)
    default = Job(id="d", name="d", kind=record["kind"], target="t", trigger=record["trigger"])
    assert slot is not None
    assert (slot.misfire_grace_time, slot.coalesce, slot.max_instances, slot.overlap) == (
        default.misfire_grace_time,
        default.coalesce,
        default.max_instances,
        default.overlap,
    )
    assert slot.owner is None


def test_records_that_will_not_fire_get_no_slot() -> None:
    table = Timetable()
    for changes in ({"paused": True}, {"enabled": False}, {"next_run_time": None}):
        job = scheduled("x", CronTrigger(minute="*/5"))
        record = {**_record(job), **changes}
        assert table.put_record(record) is None
    assert len(table) == 0 and not table.jobs


def test_put_records_schedules_what_put_record_does() -> None:
    """The start-up load's batch: the same slots, the same heap order, records that
    will not fire left out, and equal triggers shared as one object."""
    jobs = [
        scheduled("a", CronTrigger(minute="*/5"), owner="u1"),
        scheduled("b", CronTrigger(minute="*/5"), misfire_grace_time=None),
        scheduled("p", CronTrigger(minute="*/7"), paused=True),
        scheduled("c", date_at(T0), max_instances=3),
    ]
    jobs[1].next_run_time = T0 - timedelta(minutes=1)
    one_by_one, batched = Timetable(), Timetable()
    for job in jobs:
        one_by_one.put_record(_record(job))
    assert batched.put_records(_record(job) for job in jobs) == 3
    assert set(batched.jobs) == set(one_by_one.jobs) == {"a", "b", "c"}
    for job_id, slot in batched.jobs.items():
        for name in JobSlot.__slots__:
            assert getattr(slot, name) == getattr(one_by_one.jobs[job_id], name), name
    assert batched.jobs["a"].trigger is batched.jobs["b"].trigger
    order = []
    while (due := batched.pop_due(T0.timestamp() + 3600)) is not None:
        assert isinstance(due, JobSlot)
        order.append(due.id)
    assert order[0] == "b" and sorted(order) == ["a", "b", "c"]
