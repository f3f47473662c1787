"""The SQLite store's kept execution counts (stores/sqlite_counts.py) stay exact.

After every kind of write the store makes (and writes it does not make: a bare SQL
statement from another program), the kept counts equal a real count of the rows, and
stats and counts read from them equal what counting the table gives.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from engine.model import TERMINAL_STATUSES, Execution, Status
from stores.sqlite import SqliteStore
from stores.sqlite_counts import COUNTS, TRIGGERS
from tests.test_store_contract import T0, make_execution, make_job


def counted_in_table(path: Path) -> dict[tuple[str, str], int]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT COALESCE(owner, ''), status, COUNT(*) FROM cw_executions GROUP BY 1, 2"
        ).fetchall()
    return {(owner, status): n for owner, status, n in rows}


def kept(path: Path) -> dict[tuple[str, str], int]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(f"SELECT owner, status, n FROM {COUNTS} WHERE n != 0").fetchall()
    return {(owner, status): n for owner, status, n in rows}


def assert_exact(store: SqliteStore) -> None:
    truth = counted_in_table(store.path)
    finished = {key: n for key, n in truth.items() if Status(key[1]) in TERMINAL_STATUSES}
    assert kept(store.path) == finished
    by_status: dict[str, int] = {}
    for (_, status), n in truth.items():
        by_status[status] = by_status.get(status, 0) + n
    assert store.execution_stats() == by_status
    assert store.count_executions() == sum(truth.values())
    for owner in ("u1", "u2"):
        mine = {s: n for (o, s), n in truth.items() if o == owner}
        assert store.execution_stats(owner=owner) == mine
        assert store.count_executions(owner=owner) == sum(mine.values())
        for status in Status:
            assert store.count_executions(owner=owner, status=status) == mine.get(status, 0)
    for status in Status:
        assert store.count_executions(status=status) == by_status.get(status, 0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "counts.db")
    opened.open()
    yield opened
    opened.close()


def test_every_store_write_keeps_the_counts_exact(store: SqliteStore) -> None:
    one, two, nobody = make_job(owner="u1"), make_job(owner="u2"), make_job(owner=None)
    for job in (one, two, nobody):
        store.add_job(job)
    assert_exact(store)
    runs = [make_execution(j, at=T0 + timedelta(seconds=i)) for i, j in enumerate([one] * 3)]
    runs += [make_execution(two, status=Status.QUEUED), make_execution(nobody)]
    for execution in runs:
        store.add_execution(execution)
    assert_exact(store)
    store.add_execution(runs[0])  # the upsert of an unchanged execution changes nothing
    assert_exact(store)
    runs[3].status = Status.RUNNING
    store.update_execution(runs[3])
    runs[0].status = Status.COMPLETED
    store.finish_execution(runs[0])
    runs[1].status = Status.FAILED
    store.record_progress([], [runs[1]])
    assert_exact(store)
    queued = make_execution(one, status=Status.QUEUED)
    store.claim_fire(one.id, one.next_run_time, T0 + timedelta(hours=1), [queued])
    assert_exact(store)
    store.take_over(None, "node-b", "\n[taken over]\n")  # no status change: no count change
    assert len(store.abandon_running(T0, "stopped")) == 3
    assert_exact(store)
    assert store.delete_executions_before(T0 + timedelta(days=1), limit=1) == 1
    assert_exact(store)
    assert store.delete_executions_before(T0 + timedelta(days=1)) >= 1
    assert_exact(store)
    moved = make_execution(two, status=Status.COMPLETED)
    store.add_execution(moved)
    moved.owner = "u1"  # an upsert that changes the owner moves its count
    store.add_execution(moved)
    assert_exact(store)


def test_writes_by_another_program_are_counted_too(store: SqliteStore) -> None:
    job = make_job(owner="u1")
    store.add_job(job)
    for i in range(4):
        store.add_execution(make_execution(job, at=T0 + timedelta(seconds=i)))
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute("UPDATE cw_executions SET status = 'failed' WHERE status = 'running'")
        db.execute(
            "DELETE FROM cw_executions WHERE created_at = (SELECT MIN(created_at) FROM cw_executions)"
        )
    assert_exact(store)
    assert store.execution_stats() == {"failed": 3}


def test_a_file_made_before_the_counts_is_counted_once_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    store.open()
    job = make_job(owner="u2")
    store.add_job(job)
    made: list[Execution] = []
    for i, status in enumerate([Status.COMPLETED, Status.COMPLETED, Status.FAILED]):
        made.append(make_execution(job, at=T0 + timedelta(seconds=i), status=status))
        store.add_execution(made[-1])
    store.close()
    with closing(sqlite3.connect(path)) as db, db:  # as a file of an earlier version is
        for name in ("insert", "leave", "enter", "delete"):
            db.execute(f"DROP TRIGGER cw_executions_count_{name}")
        db.execute(f"DROP TABLE {COUNTS}")
    reopened = SqliteStore(path)
    reopened.open()
    try:
        assert reopened.execution_stats() == {"completed": 2, "failed": 1}
        assert_exact(reopened)
        made[0].status = Status.TIMEOUT
        reopened.add_execution(made[0])
        assert_exact(reopened)
    finally:
        reopened.close()
    again = SqliteStore(path)  # opening again neither seeds twice nor loses the triggers
    again.open()
    try:
        assert again.execution_stats() == {"completed": 1, "failed": 1, "timeout": 1}
        with closing(sqlite3.connect(path)) as db:
            names = {
                r[0]
                for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                if r[0].startswith("cw_executions_count_")  # the job revision has its own
            }
        assert len(names) == len(TRIGGERS)
    finally:
        again.close()


def test_every_counts_statement_prepares_on_an_opened_file(store: SqliteStore) -> None:
    from stores.sqlite_counts import all_statements

    with store._connection() as db:
        for sql in all_statements():
            db.execute(f"EXPLAIN {sql}", {"owner": "u1"} if ":owner" in sql else {})
