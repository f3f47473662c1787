"""The executions page, its count and the stats read through the indexes meant for them.

SQLite's EXPLAIN QUERY PLAN of each statement, on a fresh file and on one with a
skewed history after ANALYZE (what `PRAGMA optimize` may leave behind), so a changed
index or statement that makes a filtered page scan the table, sort a whole history, or
count rows again fails here instead of in a million-execution store (bench.store).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from engine.model import Status
from stores.sql import filter_key
from stores.sqlite import SqliteStore
from tests.test_store_contract import T0, make_execution, make_job

#: filters of a page or count -> the index its plan must use
PAGE_INDEX = {
    ("job_id",): "cw_executions_job",
    ("job_id", "owner"): "cw_executions_job",
    ("job_id", "status"): "cw_executions_job_status",
    ("job_id", "owner", "status"): "cw_executions_job_status",
    ("owner",): "cw_executions_owner",
    ("owner", "status"): "cw_executions_owner_status",
    ("status",): "cw_executions_status",
}


def _fill(store: SqliteStore) -> None:
    """10 users, 100 jobs, 3,000 executions, mostly completed: one user's history is
    a tenth of the whole and one job's a hundredth."""
    jobs = [make_job(f"job{i:03d}", owner=f"u{i % 10}") for i in range(100)]
    statuses = [Status.COMPLETED] * 8 + [Status.FAILED, Status.MISSED]
    runs = [
        make_execution(jobs[i % 100], at=T0 + timedelta(seconds=i), status=statuses[i % 10])
        for i in range(3000)
    ]
    with store._transaction() as cursor:
        for execution in runs:
            cursor.execute(store._sql["upsert_executions"], store_row(execution))
    with store._connection() as db:
        db.execute("ANALYZE")


def store_row(execution: object) -> dict[str, object]:
    from stores.sql import EXECUTIONS

    return EXECUTIONS.row(execution)


@pytest.fixture(params=["fresh", "analyzed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "plans.db")
    opened.open()
    if request.param == "analyzed":
        _fill(opened)
    yield opened
    opened.close()


def plan(store: SqliteStore, name: str) -> str:
    sql = store._sql[name]
    binds = dict.fromkeys(re.findall(r"(?<![:\w]):(\w+)", sql), "x")
    with store._connection() as db:
        rows = db.execute(f"EXPLAIN QUERY PLAN {sql}", binds).fetchall()
    return " / ".join(str(r[3]) for r in rows)


@pytest.mark.parametrize("filters", list(PAGE_INDEX), ids=",".join)
def test_a_filtered_page_reads_its_index_in_order_and_never_scans(
    store: SqliteStore, filters: tuple[str, ...]
) -> None:
    shown = plan(store, filter_key("list_executions", filters))
    if filters == ("status",) and "SCAN cw_executions USING INDEX cw_executions_created" in shown:
        # with statistics saying a status matches a large share of the rows, walking the
        # time index newest first and testing each row is the planner's (sound) choice:
        # still no sort, and a page reads about its size over that share
        return
    assert f"USING INDEX {PAGE_INDEX[filters]} " in shown, shown
    assert "SCAN cw_executions" not in shown, shown
    # a sort of ties inside one created_at is fine; a sort of the whole history is not
    assert "TEMP B-TREE FOR ORDER BY" not in shown, shown


@pytest.mark.parametrize("filters", [("job_id", "status"), ("owner", "status")], ids=",".join)
def test_a_page_of_one_status_needs_no_sort_at_all(
    store: SqliteStore, filters: tuple[str, ...]
) -> None:
    shown = plan(store, filter_key("list_executions", filters))
    assert "TEMP B-TREE" not in shown, shown


@pytest.mark.parametrize("filters", [f for f in PAGE_INDEX if "job_id" in f], ids=",".join)
def test_a_count_of_one_jobs_executions_reads_a_range_of_its_index(
    store: SqliteStore, filters: tuple[str, ...]
) -> None:
    shown = plan(store, filter_key("count_executions", filters))
    assert shown.startswith("SEARCH cw_executions USING "), shown
    assert "cw_executions_job" in shown, shown
    if "owner" not in filters:
        assert "COVERING INDEX" in shown, shown  # the index alone: no table row is read


@pytest.mark.parametrize("filters", [(), ("owner",)], ids=["all", "owner"])
def test_stats_read_the_kept_counts_and_only_the_active_executions(
    store: SqliteStore, filters: tuple[str, ...]
) -> None:
    """The kept table for finished executions; the executions table only through a
    status index, for the statuses still active (few at any moment)."""
    shown = plan(store, filter_key("kept_stats", filters))
    assert "cw_execution_counts" in shown, shown
    assert "SCAN cw_executions " not in f"{shown} ", shown
    reads = re.findall(
        r"(?:SCAN|SEARCH) cw_executions USING (?:COVERING )?INDEX (\w+) \(([^)]*)\)", shown
    )
    assert reads and all("status" in columns for _, columns in reads), shown


def test_the_store_answers_stats_and_counts_from_the_kept_counts(store: SqliteStore) -> None:
    """What the store really sends for stats and counts without a job: no statement
    that reads the executions table."""
    sent: list[str] = []
    with store._connection() as db:
        db.set_trace_callback(sent.append)
    try:
        store.execution_stats()
        store.execution_stats(owner="u1")
        store.count_executions()
        store.count_executions(owner="u1", status=Status.COMPLETED)
        store.count_executions(status=Status.FAILED)
    finally:
        with store._connection() as db:
            db.set_trace_callback(None)
    reads = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 5, sent
    assert all("cw_execution_counts" in s for s in reads), reads
    # the executions table is read only for the active statuses
    assert all(
        re.search(r"FROM cw_executions WHERE (owner = \S+ AND )?status IN \(", s) for s in reads
    ), reads


def test_retention_batches_walk_the_time_index_instead_of_sorting_every_expired_run(
    store: SqliteStore,
) -> None:
    shown = plan(store, filter_key("expired_executions", ()))
    assert "USING INDEX cw_executions_created" in shown, shown
    assert "TEMP B-TREE" not in shown, shown
