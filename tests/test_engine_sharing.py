"""Memory per job: equal triggers and fire times are kept once, while every read still
hands out objects the caller may change freely. Checked through the store's public
reads and by what the process allocates (tracemalloc), not by private state; the
figure itself is bench.dispatch's memory-cron-100000."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

from engine.scheduling.timetable import TIME_INTERN_LIMIT, Timetable
from engine.triggers import CronTrigger
from tests.engine_support import T0, Harness, make_job


def test_equal_cron_jobs_share_trigger_and_fire_time_in_the_store() -> None:
    """Stored jobs hand out their immutable parts shared (the store's reads copy only
    what a caller could mutate): equal triggers and fire times are one object each."""
    with Harness() as h:
        h.add(make_job("a", CronTrigger(minute="*/5")))
        h.add(make_job("b", CronTrigger(minute="*/5")))
        a, b = h.store.get_job("a"), h.store.get_job("b")
        assert a.trigger is b.trigger
        assert a.next_run_time is not None and a.next_run_time is b.next_run_time


def test_stored_jobs_without_kwargs_cost_no_dict_each_but_reads_get_their_own() -> None:
    with Harness() as h:
        h.add(make_job("a", CronTrigger(minute="*/5")))
        h.add(make_job("b", CronTrigger(minute="*/5")))
        read = h.store.get_job("a")
        read.kwargs["changed"] = True
        read.trigger = CronTrigger(minute="1")
        assert h.store.get_job("b").kwargs == {} and h.store.get_job("a").kwargs == {}
        assert h.store.get_job("a").trigger == CronTrigger(minute="*/5")


def test_the_fire_time_table_stays_bounded() -> None:
    """Sharing ten times the limit of distinct fire times keeps no more memory than
    sharing the limit: the table is cleared when full, not grown."""
    table = Timetable()

    def share(count: int, offset: int) -> None:
        for n in range(count):
            job = make_job(f"j{n}", CronTrigger(minute="*/5"))
            job.next_run_time = T0 + timedelta(seconds=offset + n)
            table.share(job)

    tracemalloc.start()
    try:
        share(TIME_INTERN_LIMIT, 0)
        at_limit = tracemalloc.get_traced_memory()[0]
        share(9 * TIME_INTERN_LIMIT, TIME_INTERN_LIMIT)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after < at_limit * 1.2, (at_limit, after)
