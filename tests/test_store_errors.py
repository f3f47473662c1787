"""Stores that cannot be used: one clear line at start, StoreError while running.

Real failures only: a directory where the file should be, a closed loopback port, a
table dropped under a running store.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from api.config import Settings
from engine.errors import StoreError, StoreUnavailable
from engine.model import JobKind
from stores import masked, open_store
from stores.memory import MemoryStore
from stores.sqlite import SqliteStore


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _unavailable(url: str, **settings: str) -> str:
    with pytest.raises(StoreUnavailable) as caught:
        open_store(Settings(store_url=url, **settings))  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_sqlite_path_that_is_a_directory(tmp_path: Path) -> None:
    message = _unavailable(f"sqlite:///{tmp_path}")
    assert message.startswith("cannot open the sqlite store sqlite:///")
    assert "is a directory" in message and str(tmp_path) in message


def test_sqlite_path_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    message = _unavailable(f"sqlite:///{blocker}/cronwell.db")
    assert "sqlite" in message and "not-a-folder" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only modes")
def test_sqlite_path_in_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        message = _unavailable(f"sqlite:///{locked}/cronwell.db")
    finally:
        locked.chmod(0o700)
    assert "unable to open database file" in message


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"these are not the pages you are looking for" * 100)
    message = _unavailable(f"sqlite:///{garbage}")
    assert "file is not a database" in message and "notes.db" in message


def test_sqlite_urls_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store(Settings(store_url="sqlite:///var/rel.db"))
    absolute = open_store(Settings(store_url=f"sqlite:///{tmp_path}/abs.db"))
    try:
        assert isinstance(relative, SqliteStore) and relative.path == Path("var/rel.db")
        assert (tmp_path / "var" / "rel.db").is_file() and (tmp_path / "abs.db").is_file()
        assert absolute.backend == "sqlite"
    finally:
        relative.close()
        absolute.close()
    assert "names no file" in _unavailable("sqlite://")


def test_memory_url() -> None:
    assert isinstance(open_store(Settings(store_url="memory://")), MemoryStore)


def test_unknown_scheme_lists_the_supported_ones() -> None:
    message = _unavailable("postgres://app:hunter2@db/cronwell")
    assert "unsupported store URL" in message and "hunter2" not in message
    for scheme in ("sqlite:///", "mongodb://", "mongodb+srv://", "oracle://", "memory://"):
        assert scheme in message


def test_mongodb_on_a_closed_port_fails_fast_with_one_line() -> None:
    port = _closed_port()
    url = f"mongodb://cron:s3cret@127.0.0.1:{port}/?serverSelectionTimeoutMS=300"
    message = _unavailable(url)
    assert message.startswith(f"cannot open the mongo store mongodb://cron:***@127.0.0.1:{port}/")
    assert "s3cret" not in message
    assert "refused" in message.lower() or "timeout" in message.lower()


def test_oracle_without_a_dsn() -> None:
    message = _unavailable("oracle://")
    assert "CRONWELL_ORACLE_DSN" in message


def test_oracle_on_a_closed_port_masks_the_password() -> None:
    port = _closed_port()
    message = _unavailable(f"oracle://scott:tiger99@127.0.0.1:{port}/FREEPDB1")
    assert message.startswith(
        f"cannot open the oracle store oracle://scott:***@127.0.0.1:{port}/FREEPDB1: "
    )
    assert "tiger99" not in message
    assert "DPY-" in message  # the driver's own reason is kept


def test_masked_leaves_urls_without_a_password_alone() -> None:
    assert masked("mongodb://h1:1,h2:2/db") == "mongodb://h1:1,h2:2/db"
    assert masked("mongodb+srv://u:p%40ss@cluster/x") == "mongodb+srv://u:***@cluster/x"


def _running_sqlite(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "cronwell.db")
    store.open()
    return store


def test_a_table_dropped_while_running_is_a_store_error(tmp_path: Path) -> None:
    store = _running_sqlite(tmp_path)
    with closing(sqlite3.connect(store.path)) as other:
        other.execute("DROP TABLE cw_jobs")
        other.commit()
    with pytest.raises(
        StoreError, match=r"^sqlite store failed: no such table: cw_jobs$"
    ) as caught:
        store.list_jobs()
    assert not isinstance(caught.value, StoreUnavailable)
    assert store.count_executions() == 0  # the rest of the store still answers
    store.close()


def test_a_connection_lost_while_running_is_a_store_error(tmp_path: Path) -> None:
    store = _running_sqlite(tmp_path)
    assert store._db is not None
    store._db.close()  # what a lost handle looks like to the next call
    with pytest.raises(
        StoreError, match="sqlite store failed: Cannot operate on a closed database"
    ):
        store.count_jobs()
    store._db = None
    with pytest.raises(StoreError, match="not open"):
        store.get_job("x")


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    from tests.test_store_contract import make_execution, make_job

    store = _running_sqlite(tmp_path)
    job = make_job(kind=JobKind.CLASS)
    store.add_job(job)
    with closing(sqlite3.connect(store.path)) as other:  # make the second write fail
        other.execute("DROP TABLE cw_executions")
        other.commit()
    with pytest.raises(StoreError):
        store.claim_fire(job.id, job.next_run_time, None, [make_execution(job)])
    assert store.get_job(job.id).next_run_time == job.next_run_time  # the claim rolled back
    store.close()
