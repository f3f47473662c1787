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
