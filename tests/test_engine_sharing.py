"""Memory per job: equal triggers and fire times are one object in the loop and in the
store's copy alike, and a stored job without kwargs holds no dict of its own, while
every read still hands out objects the caller may change freely."""

from __future__ import annotations

from datetime import timedelta

from engine.scheduling.timetable import TIME_INTERN_LIMIT, Timetable
from engine.triggers import CronTrigger
from tests.engine_support import T0, Harness, make_job


def test_equal_cron_jobs_share_trigger_and_fire_time_in_loop_and_store() -> None:
    with Harness() as h:
        h.add(make_job("a", CronTrigger(minute="*/5")))
        h.add(make_job("b", CronTrigger(minute="*/5")))
        stored_a, stored_b = h.store._jobs["a"], h.store._jobs["b"]
        slot_a, slot_b = h.scheduler._timetable.jobs["a"], h.scheduler._timetable.jobs["b"]
        assert stored_a.trigger is stored_b.trigger is slot_a.trigger
        assert stored_a.next_run_time is not None
        assert stored_a.next_run_time is stored_b.next_run_time is slot_b.next_run_time


def test_stored_jobs_without_kwargs_share_one_dict_but_reads_get_their_own() -> None:
    with Harness() as h:
        h.add(make_job("a", CronTrigger(minute="*/5")))
        h.add(make_job("b", CronTrigger(minute="*/5")))
        assert h.store._jobs["a"].kwargs is h.store._jobs["b"].kwargs
        read = h.store.get_job("a")
        read.kwargs["changed"] = True
        assert h.store.get_job("b").kwargs == {} and h.store.get_job("a").kwargs == {}


def test_the_fire_time_table_stays_bounded() -> None:
    table = Timetable()
    for n in range(TIME_INTERN_LIMIT + 5):
        job = make_job(f"j{n}", CronTrigger(minute="*/5"))
        job.next_run_time = T0 + timedelta(seconds=n)
        table.share(job)
    assert len(table._times) <= TIME_INTERN_LIMIT
