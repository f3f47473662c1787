"""Group commit: adds queued together are stored in one SQLite transaction, yet each
succeeds or fails on its own, and none is scheduled or acknowledged before the commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.errors import JobExists, StoreError
from engine.scheduling.commands import AddJob, AddJobs, PauseJob, group_adds
from stores.sqlite import SqliteStore
from tests.engine_support import Harness, every, make_job


def test_runs_of_adds_are_grouped_in_order() -> None:
    a, b, c = (AddJob(make_job(n, every(60))) for n in "abc")
    pause = PauseJob("a")
    grouped = group_adds([a, b, pause, c])
    assert isinstance(grouped[0], AddJobs) and grouped[0].adds == [a, b]
    assert grouped[1:] == [pause, c]  # a lone add stays itself


def commits(store: SqliteStore) -> list[str]:
    seen: list[str] = []
    assert store._db is not None
    store._db.set_trace_callback(lambda sql: seen.append(sql) if sql.startswith("COMMIT") else None)
    return seen


def test_queued_adds_share_one_commit_and_fail_alone(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    store.open()
    with Harness(store=store) as h:
        seen = commits(store)
        futures = [
            h.scheduler.add_job(make_job("a", every(60))),
            h.scheduler.add_job(make_job("a", every(30))),  # duplicate, no replace
            h.scheduler.add_job(make_job("b", every(60))),
            h.scheduler.add_job(make_job("a", every(45)), replace=True),
        ]
        h.at(-0.5)
        assert len(seen) == 1
        assert futures[0].result(0).id == "a"
        assert isinstance(futures[1].exception(0), JobExists)
        assert futures[2].result(0).id == "b"
        assert futures[3].result(0).trigger == every(45)
        assert sorted(j.id for j in store.list_jobs()) == ["a", "b"]
        assert store.get_job("a").trigger == every(45)
        assert h.scheduler.scheduled_jobs == 2
    store.close()


class LosesItsTransaction(SqliteStore):
    """A real SQLite store whose batch transaction is gone by commit time (as after an
    I/O error SQLite answered with a rollback)."""

    @contextmanager
    def write_batch(self) -> Iterator[None]:
        with super().write_batch():
            yield
            assert self._db is not None
            self._db.execute("ROLLBACK")


def test_a_failed_commit_fails_every_add_of_the_batch(tmp_path: Path) -> None:
    store = LosesItsTransaction(tmp_path / "jobs.db")
    store.open()
    with Harness(store=store) as h:
        futures = [h.scheduler.add_job(make_job(n, every(60))) for n in "xy"]
        h.at(-0.5)
        for future in futures:
            with pytest.raises(StoreError):
                future.result(0)
        assert store.list_jobs() == []
        assert h.scheduler.scheduled_jobs == 0
        # the store is usable again, one add at a time
        assert h.add(make_job("z", every(60))).id == "z"
        assert [j.id for j in store.list_jobs()] == ["z"]
    store.close()


def test_write_batches_do_not_nest_and_commit_their_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    store.open()
    try:
        with store.write_batch():
            store.add_job(make_job("q", every(60)))
            with pytest.raises(StoreError), store.write_batch():
                pass
        assert [j.id for j in store.list_jobs()] == ["q"]
    finally:
        store.close()
