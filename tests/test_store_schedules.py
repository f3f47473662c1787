"""Every backend keeps issue 15's schedules exactly: six-field crons, windows, jitter
(with its seed) around each trigger kind, through add, get, get_jobs, list and update.
The same `store` fixture as the contract suite (memory, SQLite, the MongoStore code on
mongomock, and real MongoDB / Oracle servers when configured)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.triggers import BoundedTrigger, CronTrigger, DateTrigger, IntervalTrigger, Trigger
from stores.base import Store
from tests.test_store_contract import T0, make_job, store  # noqa: F401 (the fixture)

TRIGGERS = {
    "six-field cron": CronTrigger.from_crontab("*/15 0 9 * * 1-5", timezone="Europe/Berlin"),
    "cron in a window with jitter": BoundedTrigger(
        CronTrigger.from_crontab("0 */2 * * *", timezone="America/New_York"),
        start_date=T0,
        end_date=T0 + timedelta(days=30),
        jitter=90.5,
        seed=2**63 - 1,
    ),
    "interval with jitter": BoundedTrigger(
        IntervalTrigger(seconds=30, start_date=T0, timezone="Europe/Berlin"), jitter=10, seed=7
    ),
    "date in a window": BoundedTrigger(
        DateTrigger(T0 + timedelta(hours=5), timezone="Asia/Tokyo"),
        start_date=T0,
        end_date=T0 + timedelta(hours=6),
        seed=1,
    ),
}


@pytest.mark.parametrize("name", list(TRIGGERS))
def test_schedules_round_trip(store: Store, name: str) -> None:  # noqa: F811
    trigger: Trigger = TRIGGERS[name]
    first = trigger.next_fire_time(T0)
    job = make_job(trigger=trigger, next_run_time=first)
    store.add_job(job)
    for got in (store.get_job(job.id), store.get_jobs([job.id])[job.id]):
        assert got.trigger == trigger and type(got.trigger) is type(trigger)
        assert got.trigger.to_dict() == trigger.to_dict()
        assert got.next_run_time == first
        assert got.trigger.next_fire_time(T0) == first  # same jitter: the seed was kept
    (listed,) = [j for j in store.list_jobs() if j.id == job.id]
    assert listed.trigger == trigger
    moved = BoundedTrigger(CronTrigger(minute="5-5"), end_date=T0 + timedelta(days=1), seed=3)
    job.trigger = moved
    store.update_job(job)
    assert store.get_job(job.id).trigger == moved
