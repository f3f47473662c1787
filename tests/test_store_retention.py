"""History retention (api/retention.py) on every backend: `history_limit` keeps a
job's newest N executions, `CRONWELL_HISTORY_DAYS` drops old ones, in small batches,
never touching queued, running or scheduled executions; the store call it uses; and the
background thread, driven by the engine's events on the fake clock."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from api.config import load_settings
from api.retention import Retention
from engine.clock import FakeClock
from engine.errors import InvalidInput
from engine.model import Execution, Job, Status
from stores.base import Store
from tests.engine_support import Harness, every, wait_for
from tests.engine_support import make_job as engine_job
from tests.test_store_contract import T0, make_execution, make_job, store  # noqa: F401

ACTIVE = (Status.QUEUED, Status.RUNNING, Status.SCHEDULED)


def history(store: Store, job: Job, statuses: list[Status], start: Any = T0) -> list[Execution]:  # noqa: F811
    """Executions of `job`, one minute apart from `start`, oldest first."""
    made = []
    for minute, status in enumerate(statuses):
        execution = make_execution(job, at=start + timedelta(minutes=minute), status=status)
        store.add_execution(execution)
        made.append(execution)
    return made


def kept(store: Store, job: Job) -> list[str]:  # noqa: F811
    """Ids of the job's executions still stored, oldest first."""
    return [e.id for e in reversed(store.list_executions(job_id=job.id, limit=1000))]


# -- the store call -----------------------------------------------------------------------------


def test_batched_deletes_go_oldest_first_and_skip_active_ones(store: Store) -> None:  # noqa: F811
    job, other = make_job(), make_job()
    made = history(
        store, job, [Status.COMPLETED, Status.RUNNING, *[Status.FAILED] * 4, Status.QUEUED]
    )
    theirs = history(store, other, [Status.COMPLETED] * 3)
    cutoff = T0 + timedelta(hours=1)
    assert store.delete_executions_before(cutoff, job_id=job.id, limit=0) == 0
    assert store.delete_executions_before(cutoff, job_id=job.id, limit=2) == 2
    assert kept(store, job) == [made[1].id, *[e.id for e in made[3:]]]  # the two oldest done
    assert store.delete_executions_before(cutoff, job_id=job.id, limit=100) == 3
    assert kept(store, job) == [made[1].id, made[6].id]  # running and queued stay
    assert kept(store, other) == [e.id for e in theirs]  # another job's are not touched
    assert store.delete_executions_before(T0 + timedelta(minutes=1), limit=5) == 1
    assert kept(store, other) == [e.id for e in theirs[1:]]


# -- one sweep, on the fake clock ---------------------------------------------------------------


def test_history_limit_keeps_the_newest_n(store: Store) -> None:  # noqa: F811
    limited = make_job(history_limit=3)
    unlimited = make_job()
    store.add_job(limited)
    store.add_job(unlimited)
    statuses = [Status.COMPLETED, Status.RUNNING, Status.FAILED, Status.SCHEDULED, Status.MISSED]
    made = history(store, limited, [*statuses, *[Status.COMPLETED] * 5])
    theirs = history(store, unlimited, [Status.COMPLETED] * 6)
    retention = Retention(store, FakeClock(T0 + timedelta(days=1)), batch=2)
    retention.load_limits()
    swept = retention.sweep()
    newest_three = [e.id for e in made[-3:]]
    assert kept(store, limited) == [made[1].id, made[3].id, *newest_three]  # + the active ones
    assert swept.by_limit == 5 and swept.by_age == 0 and swept.batches >= 3
    assert kept(store, unlimited) == [e.id for e in theirs]
    assert retention.sweep().by_limit == 0  # nothing more to do


def test_history_days_drops_old_finished_executions(store: Store) -> None:  # noqa: F811
    job = make_job()
    store.add_job(job)
    old = history(
        store,
        job,
        [Status.COMPLETED, Status.RUNNING, Status.TIMEOUT],
        start=T0 - timedelta(days=40),
    )
    recent = history(store, job, [Status.COMPLETED, Status.FAILED], start=T0 - timedelta(days=2))
    clock = FakeClock(T0)
    retention = Retention(store, clock, days=30, batch=1)
    swept = retention.sweep()
    assert swept.by_age == 2 and swept.batches == 3  # two single deletes, one empty call
    assert kept(store, job) == [old[1].id, *[e.id for e in recent]]
    clock.set(T0 + timedelta(days=40))
    assert retention.sweep().by_age == 2
    assert kept(store, job) == [old[1].id]  # a running one outlives every cutoff


def test_every_batch_is_small(store: Store) -> None:  # noqa: F811
    job = make_job(history_limit=1)
    store.add_job(job)
    history(store, job, [Status.COMPLETED] * 12)
    limits: list[int | None] = []
    real = store.delete_executions_before

    def counting(*args: Any, **kwargs: Any) -> int:
        limits.append(kwargs.get("limit"))
        return real(*args, **kwargs)

    store.delete_executions_before = counting  # type: ignore[method-assign]
    retention = Retention(store, FakeClock(T0), batch=4, pause=0)
    retention.load_limits()
    assert retention.sweep().by_limit == 11
    assert limits == [4, 4, 4]  # 4 + 4 + 3: never one unbounded delete
    assert len(kept(store, job)) == 1


# -- in the background, driven by the engine's events --------------------------------------------


def test_the_engine_s_events_drive_the_background_trim() -> None:
    with Harness() as h:
        retention = Retention(h.store, h.clock, settle=0.01, pause=0)
        retention.attach(h.scheduler.events)
        retention.start()
        try:
            h.add(engine_job("ticks", every(60), history_limit=2))
            time.sleep(0.3)  # the trim the add itself asks for is over (nothing to trim)
            for minute in range(6):
                h.at(60 * minute)
                h.settle()
            # only the finished executions' events can ask for this trim now
            assert wait_for(lambda: len(h.executions("ticks")) == 2)
            newest = [e.scheduled_for for e in h.executions("ticks")]
            assert newest == [h.clock.now() - timedelta(minutes=1), h.clock.now()]
            # lowering the limit trims at once; removing it stops the trimming
            h.do(h.scheduler.modify_job("ticks", history_limit=1))
            assert wait_for(lambda: len(h.executions("ticks")) == 1)
            h.do(h.scheduler.modify_job("ticks", history_limit=None))
            for minute in range(6, 9):
                h.at(60 * minute)
                h.settle()
            assert wait_for(lambda: len(h.executions("ticks")) == 4)
        finally:
            retention.stop()


def test_history_limit_is_checked_by_the_engine() -> None:
    with Harness() as h, pytest.raises(InvalidInput, match="history_limit"):
        h.add(engine_job("bad", every(60), history_limit=0))


@pytest.mark.parametrize(("value", "days"), [("30", 30), ("1", 1)])
def test_history_days_comes_from_the_environment(value: str, days: int) -> None:
    settings = load_settings({"CRONWELL_HISTORY_DAYS": value}, dotenv=None)
    assert settings.extra["history_days"] == days
    assert "history_days" not in load_settings({}, dotenv=None).extra


@pytest.mark.parametrize("value", ["0", "-3", "soon", "1.5"])
def test_bad_history_days_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="CRONWELL_HISTORY_DAYS"):
        load_settings({"CRONWELL_HISTORY_DAYS": value}, dotenv=None)
