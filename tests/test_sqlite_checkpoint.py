"""WAL checkpoints on the store's own thread (stores/sqlite_checkpoint.py): the writer
no longer checkpoints in its commit at 1,000 pages; the thread copies what was
committed once writes stop for a while (after enough of them), or sooner once many
were made; reads do not count; a pass does not wait for a writer; closing the store ends
the thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from stores.sqlite import SqliteStore
from stores.sqlite_checkpoint import BACKSTOP_PAGES, QUIET_WRITES, Checkpointer
from tests.api_support import opened_sqlite
from tests.test_sqlite_revision import make_job

#: long enough for a pass on a loaded machine; a passing test waits far less
PASS_WAIT = 10.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with opened_sqlite(tmp_path / "cronwell.db") as opened:
        yield opened


def checkpointer_of(store: SqliteStore) -> Checkpointer:
    assert store.checkpointer is not None
    return store.checkpointer


def test_the_writer_checkpoints_only_at_the_backstop(store: SqliteStore) -> None:
    assert store._db is not None
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    checkpointer_of(store).stop()  # nobody checkpoints now but the writer itself
    for k in range(300):  # about 8 pages each: well past SQLite's default 1,000
        store.add_job(make_job(f"j{k}"))
    by_hand = Checkpointer(store._checkpoint_connection)
    by_hand.open()
    try:
        result = by_hand.checkpoint()
    finally:
        by_hand.stop()
    assert result is not None
    busy, frames, copied = result
    assert busy == 0
    assert 1000 < frames < BACKSTOP_PAGES  # the commits left every frame in the WAL
    assert copied == frames


def test_writes_wake_the_thread_and_it_copies_what_was_committed(store: SqliteStore) -> None:
    checkpointer = checkpointer_of(store)
    assert checkpointer.running
    checkpointer.passed.clear()
    for k in range(QUIET_WRITES):
        store.add_job(make_job(f"j{k}"))
    assert checkpointer.passed.wait(PASS_WAIT)
    assert checkpointer.last is not None
    _, frames, copied = checkpointer.last
    assert frames > 0 and copied == frames
    assert {t.name for t in threading.enumerate()} >= {"cronwell-checkpoint"}


def own_checkpointer(
    store: SqliteStore, interval: float, pass_writes: int, quiet_writes: int = 1
) -> Checkpointer:
    """The store's thread stopped and one with these settings started on its file."""
    checkpointer_of(store).stop()
    mine = Checkpointer(
        store._checkpoint_connection, interval, pass_writes, "test-checkpoint", quiet_writes
    )
    mine.start()
    return mine


def write(store: SqliteStore, checkpointer: Checkpointer, job_id: str) -> None:
    """A job write, counted by `checkpointer` (one not the store's own)."""
    store.add_job(make_job(job_id))
    checkpointer.wrote()


def test_enough_writes_start_a_pass_before_writes_stop(store: SqliteStore) -> None:
    mine = own_checkpointer(store, interval=3600.0, pass_writes=5)  # never quiet enough
    try:
        for k in range(4):
            write(store, mine, f"j{k}")
        assert mine.pending and mine.passes == 0
        write(store, mine, "j4")
        assert mine.passed.wait(PASS_WAIT)
        assert mine.last is not None and mine.last[2] == mine.last[1] > 0
        assert not mine.pending
    finally:
        mine.stop()
    assert not mine.running


def test_a_pause_starts_a_pass_once_enough_writes_wait(store: SqliteStore) -> None:
    mine = own_checkpointer(store, interval=0.01, pass_writes=10**9, quiet_writes=3)
    try:
        write(store, mine, "a")
        write(store, mine, "b")
        assert not mine.passed.wait(0.2)  # twenty pauses went by
        assert not mine.pending  # and the thread went back to waiting for writes
        write(store, mine, "c")
        assert mine.passed.wait(PASS_WAIT)
        assert mine.passes >= 1
    finally:
        mine.stop()


def test_reads_do_not_count_as_writes(store: SqliteStore) -> None:
    store.add_job(make_job("a"))
    checkpointer = checkpointer_of(store)
    writes = checkpointer._writes
    store.get_job("a")
    store.render_jobs(None, lambda job: job.id)
    store.jobs_revision()
    assert checkpointer._writes == writes


def test_a_pass_does_not_wait_for_a_writer(store: SqliteStore, tmp_path: Path) -> None:
    store.add_job(make_job("a"))
    checkpointer = checkpointer_of(store)
    with closing(sqlite3.connect(tmp_path / "cronwell.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        other.execute("UPDATE cw_jobs SET paused = 1 WHERE id = 'a'")
        result = checkpointer.checkpoint()  # busy timeout 0: would raise if it waited
        other.execute("ROLLBACK")
    assert result is not None and result[0] == 0


def test_closing_the_store_ends_the_thread(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cronwell.db")
    store.open()
    checkpointer = checkpointer_of(store)
    assert checkpointer.running
    store.close()
    assert store.checkpointer is None
    assert not checkpointer.running
    assert checkpointer.checkpoint() is None  # its connection is closed too
