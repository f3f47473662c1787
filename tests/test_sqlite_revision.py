"""The job table's revision SQLite keeps by itself (stores/sqlite_revision.py): it moves
with every write to a job row, whoever writes (this store, another store on the file,
a plain connection), not with other tables' writes or a rolled-back write, and it is
read without waiting on a writer."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api import job_lists
from engine.model import Job, JobKind, Status
from engine.records import new_execution
from engine.triggers import DateTrigger
from stores.memory import MemoryStore
from stores.sqlite import SqliteStore
from tests.api_support import opened_sqlite

T0 = datetime(2030, 3, 1, 8, 30, tzinfo=UTC)


def make_job(job_id: str, owner: str = "u1") -> Job:
    return Job(
        id=job_id,
        name=f"bash:/opt/{job_id}.sh",
        kind=JobKind.BASH,
        target=f"/opt/{job_id}.sh",
        trigger=DateTrigger(T0 + timedelta(days=1)),
        owner=owner,
        next_run_time=T0 + timedelta(days=1),
        created_at=T0,
        updated_at=T0,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with opened_sqlite(tmp_path / "cronwell.db") as opened:
        yield opened


def moved(store: SqliteStore, before: int | None) -> int:
    """The revision now, checked to differ from `before`."""
    now = store.jobs_revision()
    assert now is not None and now != before
    return now


def test_every_job_write_of_this_store_moves_the_revision(store: SqliteStore) -> None:
    revision = store.jobs_revision()
    job = make_job("a")
    store.add_job(job)
    revision = moved(store, revision)
    job.paused = True
    store.update_job(job)
    revision = moved(store, revision)
    store.add_job(job, replace=True)
    revision = moved(store, revision)
    fire = new_execution(job, "bash", Status.QUEUED, T0, scheduled_for=job.next_run_time)
    assert store.claim_fire(job.id, job.next_run_time, None, [fire])  # the fire's claim
    revision = moved(store, revision)
    fire.status, fire.completed_at = Status.COMPLETED, T0
    store.finish_execution(fire)  # total_executions, last_run_time
    revision = moved(store, revision)
    store.remove_job(job.id)
    moved(store, revision)


def test_other_tables_and_refused_writes_leave_it(store: SqliteStore) -> None:
    job = make_job("a")
    store.add_job(job)
    revision = store.jobs_revision()
    store.add_execution(new_execution(job, "bash", Status.QUEUED, T0))
    assert not store.claim_fire(job.id, T0, None, [])  # expected time differs: no write
    with pytest.raises(LookupError):
        store.remove_job("missing")
    assert store.jobs_revision() == revision


def test_another_store_and_another_program_on_the_file_move_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    revision = store.jobs_revision()
    with opened_sqlite(tmp_path / "cronwell.db") as other:  # another node on the same file
        other.add_job(make_job("b"))
    revision = moved(store, revision)
    with closing(sqlite3.connect(tmp_path / "cronwell.db", isolation_level=None)) as db:
        db.execute("UPDATE cw_jobs SET doc = doc WHERE id = 'b'")
        revision = moved(store, revision)
        db.execute("BEGIN IMMEDIATE")  # a write rolled back takes its bump back
        db.execute("DELETE FROM cw_jobs")
        db.execute("ROLLBACK")
    assert store.jobs_revision() == revision


def test_read_without_waiting_for_a_writer_and_never_uncommitted(
    store: SqliteStore, tmp_path: Path
) -> None:
    store.add_job(make_job("a"))
    revision = store.jobs_revision()
    with closing(sqlite3.connect(tmp_path / "cronwell.db", isolation_level=None)) as db:
        db.execute("BEGIN EXCLUSIVE")  # another process's write lock, held
        db.execute("DELETE FROM cw_jobs")
        assert store.jobs_revision() == revision  # answered (busy timeout 0), committed only
        db.execute("COMMIT")
    moved(store, revision)


def test_revised_texts_are_the_lists_texts_at_that_revision(store: SqliteStore) -> None:
    for job_id, owner in (("a", "u1"), ("b", "u2"), ("c", "u1")):
        store.add_job(make_job(job_id, owner))
    for owner in (None, "u1"):
        revision, texts = store.revised_render_jobs(owner, job_lists.script_job_text)
        assert revision == store.jobs_revision()
        assert texts == store.render_jobs(owner, job_lists.script_job_text)
    assert len(store.revised_render_jobs("u1", job_lists.script_job_text)[1]) == 2


def test_stores_without_a_revision_say_so(tmp_path: Path) -> None:
    memory = MemoryStore()
    memory.open()
    memory.add_job(make_job("a"))
    assert memory.jobs_revision() is None
    assert memory.revised_render_jobs(None, job_lists.script_job_text)[0] is None
    closed = SqliteStore(tmp_path / "closed.db")
    assert closed.jobs_revision() is None
