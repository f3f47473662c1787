"""The jobs' slot columns (stores/sql_slots.py): a file made by the old schema migrates
in place on first open with nothing lost, and every write keeps the columns equal to
what the job's document says, so the start-up load (which reads only the columns) sees
what a whole-document read would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.errors import StoreUnavailable
from engine.interfaces import JOB_ROW_FIELDS
from engine.model import Execution, Job, JobKind, Status, Surface
from engine.scheduling.timetable import RECORD_FIELDS
from engine.triggers import BoundedTrigger, CronTrigger, DateTrigger, IntervalTrigger
from stores.codec import dumps, time_text
from stores.sql import JOBS
from stores.sql_slots import FIELD_COLUMNS, SLOT_COLUMNS, with_documents
from stores.sqlite import SqliteStore
from tests.test_store_contract import T0, make_job

#: what the start-up load asks for (the engine's fields and the service's observers')
LOAD_FIELDS = (*RECORD_FIELDS, "history_limit", "notify")
#: the jobs table as the code before the slot columns made it (its DDL, verbatim)
OLD_JOBS_DDL = (
    (
        "CREATE TABLE IF NOT EXISTS cw_jobs (id TEXT NOT NULL PRIMARY KEY, owner TEXT, "
        "created_at TEXT, enabled INTEGER NOT NULL DEFAULT 0, paused INTEGER NOT NULL "
        "DEFAULT 0, next_run_time TEXT, last_run_time TEXT, total_executions INTEGER NOT "
        "NULL DEFAULT 0, doc TEXT NOT NULL)"
    ),
    "CREATE INDEX IF NOT EXISTS cw_jobs_created ON cw_jobs (created_at, id)",
    "CREATE INDEX IF NOT EXISTS cw_jobs_owner ON cw_jobs (owner, created_at)",
    "CREATE INDEX IF NOT EXISTS cw_jobs_next_run ON cw_jobs (next_run_time)",
)
OLD_INSERT = (
    "INSERT INTO cw_jobs (id, owner, created_at, enabled, paused, next_run_time, "
    "last_run_time, total_executions, doc) VALUES (:id, :owner, :created_at, :enabled, "
    ":paused, :next_run_time, :last_run_time, :total_executions, :doc)"
)


def varied_jobs() -> list[Job]:
    """Jobs that differ in every slot field."""
    cron = CronTrigger.from_crontab("*/15 0 9 * * 1-5", timezone="Europe/Berlin")
    return [
        make_job("plain"),
        make_job(
            "notified",
            notify={"on": ["failed"], "webhook": "http://127.0.0.1:9/hook", "secret": "s"},
            history_limit=25,
            misfire_grace_time=30.5,
            coalesce=False,
            max_instances=3,
            overlap="queue",
            trigger=cron,
        ),
        make_job("paused", paused=True, name="paused ✓", owner=None),
        make_job("disabled", enabled=False, next_run_time=None),
        make_job(
            "script",
            kind=JobKind.BASH,
            target="/srv/scripts/a b.sh",
            surface=Surface.SCRIPTS,
            trigger=DateTrigger(T0 + timedelta(hours=2), timezone="Asia/Tokyo"),
            next_run_time=T0 + timedelta(hours=2),
        ),
        make_job(
            "windowed",
            trigger=BoundedTrigger(
                IntervalTrigger(seconds=30, start_date=T0), jitter=10.0, seed=2**63 - 1
            ),
            last_run_time=T0,
            total_executions=4,
        ),
    ]


def old_file(path: Path, jobs: list[Job]) -> None:
    """A store file as the old code left it: its jobs table, rows with a document and
    the old scalar columns only."""
    old = [c for c in JOBS.columns if c not in SLOT_COLUMNS]
    with closing(sqlite3.connect(path)) as db:
        for statement in OLD_JOBS_DDL:
            db.execute(statement)
        for job in jobs:
            row = JOBS.values(job, old)
            row["doc"] = dumps(job.to_record())
            db.execute(OLD_INSERT, row)
        db.commit()


def slot_columns(path: Path, job_id: str) -> dict[str, Any]:
    names = [c.name for c in SLOT_COLUMNS]
    with closing(sqlite3.connect(path)) as db:
        found = db.execute(f"SELECT {', '.join(names)} FROM cw_jobs WHERE id = ?", (job_id,))
        return dict(zip(names, found.fetchone(), strict=True))


def records(store: SqliteStore, fields: tuple[str, ...] | None) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for page in store.job_records(2, fields) for r in page}


def assert_in_sync(store: SqliteStore, job_id: str) -> None:
    """The columns hold what the stored job's document says, and the start-up load's
    record of the job equals the whole-document record's same fields."""
    job = store.get_job(job_id)
    assert slot_columns(store.path, job_id) == JOBS.values(job, SLOT_COLUMNS)
    whole = records(store, None)[job_id]
    assert records(store, LOAD_FIELDS)[job_id] == {n: whole[n] for n in FIELD_COLUMNS}


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "jobs.db")
    store.open()
    try:
        yield store
    finally:
        store.close()


def test_an_old_file_gains_the_columns_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    jobs = varied_jobs()
    old_file(path, jobs)
    store = SqliteStore(path)
    store.open()
    try:
        for job in jobs:
            assert store.get_job(job.id) == job
            assert_in_sync(store, job.id)
        assert len(records(store, LOAD_FIELDS)) == len(jobs)
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as db:
        assert (
            db.execute("SELECT COUNT(*) FROM cw_jobs WHERE trigger_spec IS NULL").fetchone()[0] == 0
        )


def test_a_migrated_file_is_not_filled_again(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_file(path, varied_jobs())
    for _ in range(2):
        store = SqliteStore(path)
        store.open()
        with store._connection() as db:
            present = [row[1] for row in db.execute("PRAGMA table_info(cw_jobs)")]
            assert store._migrate_jobs(db.cursor(), present) == 0
        store.close()


def test_a_row_without_columns_is_read_from_its_document(sqlite_store: SqliteStore) -> None:
    """An insert that names only the old columns (an older version's) leaves the slot
    columns empty: the load reads that job's document instead."""
    job = make_job("old-writer", history_limit=3)
    old = [c for c in JOBS.columns if c not in SLOT_COLUMNS]
    row = JOBS.values(job, old)
    row["doc"] = dumps(job.to_record())
    with sqlite_store._transaction() as cursor:
        cursor.execute(OLD_INSERT, row)
    assert slot_columns(sqlite_store.path, job.id)["trigger_spec"] is None
    whole = records(sqlite_store, None)[job.id]
    assert records(sqlite_store, LOAD_FIELDS)[job.id] == {n: whole[n] for n in FIELD_COLUMNS}
    sqlite_store.add_job(make_job("new-writer"))
    rows = {row[0]: row for page in sqlite_store.job_rows(1) for row in page}
    assert set(rows) == {"old-writer", "new-writer"}
    assert rows["old-writer"] == tuple(whole[n] for n in JOB_ROW_FIELDS)


def test_a_row_without_columns_whose_job_is_gone_is_left_out() -> None:
    """Its document is read apart from the page: a job removed in between has no row."""

    def row(job_id: str, trigger: str | None) -> tuple[Any, ...]:
        values = dict.fromkeys(JOB_ROW_FIELDS, 0) | {"id": job_id, "trigger": trigger}
        return tuple(values[name] for name in JOB_ROW_FIELDS)

    from_document = {"a": row("a", "{}")}.get
    page = [row("a", None), row("b", '{"kind":"cron"}'), row("gone", None)]
    assert with_documents(page, from_document) == [row("a", "{}"), page[1]]
    whole = [page[1]]
    assert with_documents(whole, from_document) is whole  # nothing to read: no copy


@pytest.mark.parametrize("job", varied_jobs(), ids=lambda j: j.id)
def test_add_and_replace_write_the_columns(sqlite_store: SqliteStore, job: Job) -> None:
    sqlite_store.add_job(job)
    assert_in_sync(sqlite_store, job.id)
    job.name, job.history_limit, job.notify = "replaced", 9, {"on": ["completed"]}
    sqlite_store.add_job(job, replace=True)
    assert slot_columns(sqlite_store.path, job.id)["notify_spec"] == '{"on":["completed"]}'
    assert_in_sync(sqlite_store, job.id)


def test_pause_and_resume_update_the_columns(sqlite_store: SqliteStore) -> None:
    job = make_job("p")
    sqlite_store.add_job(job)
    job.paused, job.next_run_time = True, None
    sqlite_store.update_job(job)
    assert slot_columns(sqlite_store.path, "p")["name"] == "nightly report"
    assert records(sqlite_store, LOAD_FIELDS)["p"]["paused"] is True
    assert_in_sync(sqlite_store, "p")
    job.paused, job.next_run_time = False, T0 + timedelta(minutes=10)
    sqlite_store.update_job(job)
    assert records(sqlite_store, LOAD_FIELDS)["p"]["paused"] is False
    assert_in_sync(sqlite_store, "p")


def test_a_modify_updates_every_column(sqlite_store: SqliteStore) -> None:
    job = make_job("m")
    sqlite_store.add_job(job)
    job.name, job.kind, job.target = "renamed", JobKind.PYTHON, "/srv/scripts/r.py"
    job.trigger = CronTrigger.from_crontab("0 9 * * *", timezone="America/New_York")
    job.misfire_grace_time, job.coalesce, job.max_instances = 5.0, False, 2
    job.overlap, job.history_limit = "allow", 100
    job.notify = {"on": ["failed"], "email": "ops@example.com"}
    job.enabled = False
    sqlite_store.update_job(job)
    columns = slot_columns(sqlite_store.path, "m")
    assert columns["target"] == "/srv/scripts/r.py" and columns["max_instances"] == 2
    assert columns["overlap_policy"] == "allow" and columns["history_limit"] == 100
    assert_in_sync(sqlite_store, "m")


def test_a_claim_moves_the_loads_next_run_time(sqlite_store: SqliteStore) -> None:
    job = make_job("c")
    sqlite_store.add_job(job)
    due = job.next_run_time
    assert due is not None
    later = due + timedelta(minutes=5)
    run = Execution("e1", "c", Status.QUEUED, created_at=due, scheduled_for=due, owner="u1")
    assert sqlite_store.claim_fire("c", due, later, [run])
    assert records(sqlite_store, LOAD_FIELDS)["c"]["next_run_time"] == later
    assert_in_sync(sqlite_store, "c")
    # the last fire of a job: no next run time, so the load leaves it out of the heap
    assert sqlite_store.claim_fire("c", later, None, [])
    assert records(sqlite_store, LOAD_FIELDS)["c"]["next_run_time"] is None
    assert_in_sync(sqlite_store, "c")


def test_a_finished_run_keeps_the_columns(sqlite_store: SqliteStore) -> None:
    """The run counters' update touches no slot column and leaves them in sync."""
    job = make_job("f", history_limit=2)
    sqlite_store.add_job(job)
    run = Execution("e2", "f", Status.RUNNING, created_at=T0, started_at=T0, owner="u1")
    sqlite_store.add_execution(run)
    run.status, run.completed_at = Status.COMPLETED, T0 + timedelta(seconds=1)
    sqlite_store.finish_execution(run)
    assert sqlite_store.get_job("f").total_executions == 1
    assert slot_columns(sqlite_store.path, "f")["history_limit"] == 2
    assert_in_sync(sqlite_store, "f")
    assert time_text(T0) == sqlite_store._rows("get_jobs", {"id": "f"})[0][2]


def test_a_failed_fill_leaves_the_old_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The columns are added and filled in the open's one transaction: a fill that fails
    adds no column, and the next open migrates the file whole."""
    path = tmp_path / "old.db"
    jobs = varied_jobs()
    old_file(path, jobs)
    real = SqliteStore._execute_many

    def failing(self: SqliteStore, cursor: Any, sql: str, rows: Any) -> None:
        if sql == self._sql["backfill_slots"]:
            raise sqlite3.OperationalError("disk I/O error")
        real(self, cursor, sql, rows)

    monkeypatch.setattr(SqliteStore, "_execute_many", failing)
    with pytest.raises(StoreUnavailable):
        SqliteStore(path).open()
    with closing(sqlite3.connect(path)) as db:
        names = {row[1] for row in db.execute("PRAGMA table_info(cw_jobs)")}
    assert names.isdisjoint(c.name for c in SLOT_COLUMNS)
    monkeypatch.setattr(SqliteStore, "_execute_many", real)
    store = SqliteStore(path)
    store.open()
    try:
        assert [store.get_job(j.id) for j in jobs] == jobs
        for job in jobs:
            assert_in_sync(store, job.id)
    finally:
        store.close()
