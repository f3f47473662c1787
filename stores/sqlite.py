"""The SQLite store: the default, one file (created with its folders on first start).

WAL journal with synchronous=NORMAL: readers never block the writer and a commit costs
no fsync (a power cut may lose the last commits, never corrupt the file). One connection
guarded by a lock serves the loop thread, the pool threads and the API thread, and the
lock makes each Store method one serial transaction. A connection per thread was
measured against it (execution records, add + finish, on a shared 2-core VM): 1.04 vs
0.78 ms per record from one thread, 0.91 vs 0.93 ms from four, since SQLite lets one
writer in at a time anyway; bench/store.py keeps the four-thread figure.

Stats and the executions page's totals read counts the file keeps by itself (triggers,
stores/sqlite_counts.py), so they cost a few rows however long the history is. The
job table's revision (stores/sqlite_revision.py) is read through a second connection
that never waits, so the event loop can ask whether a remembered job list still holds.
WAL checkpoints run on a thread of their own (stores/sqlite_checkpoint.py), not in the
commit of the write that filled the WAL.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

from engine.errors import StoreError, StoreUnavailable
from engine.model import Job, Status
from stores import sqlite_counts as counts
from stores import sqlite_revision as revision
from stores.sql import RETIRED_INDEXES, TABLES, SqlStore, filter_key
from stores.sql_cluster import CLUSTER_TABLES
from stores.sql_tables import Dialect, Table
from stores.sqlite_checkpoint import BACKSTOP_PAGES, Checkpointer

#: milliseconds a writer waits for another process's lock before failing
BUSY_TIMEOUT_MS = 5000
#: the job writes that bind the whole row by position (`SqliteDialect.by_position`)
JOB_ROW_WRITES = ("insert_jobs", "upsert_jobs")
#: the jobs table's columns as the file has them (a file of an older version may lack some)
JOB_COLUMNS = f"PRAGMA table_info({TABLES['jobs'].name})"

log = logging.getLogger(__name__)


class SqliteDialect(Dialect):
    name = "sqlite"
    types: ClassVar[dict[str, str]] = {
        "key": "TEXT NOT NULL PRIMARY KEY",
        "text": "TEXT",
        "time": "TEXT",
        "int": "INTEGER NOT NULL DEFAULT 0",
        "doc": "TEXT NOT NULL",
        "long": "TEXT",
        "real": "REAL",
        "count": "INTEGER",
        "json": "TEXT",
        "seq": "INTEGER NOT NULL PRIMARY KEY",
    }
    if_not_exists = "IF NOT EXISTS "

    def upsert(self, table: Table) -> str:
        names = table.names
        updates = ", ".join(f"{n} = excluded.{n}" for n in table.overwritten)
        return (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join(':' + n for n in names)}) "
            f"ON CONFLICT(id) DO UPDATE SET {updates}"
        )

    def page(self, select: str) -> str:
        return f"{select} LIMIT :limit OFFSET :offset"

    def by_position(self, statement: str, table: Table) -> str:
        """`statement` (an insert or upsert of `table`'s whole row) with its VALUES bound
        by position: sqlite3 looks each named bind up in the mapping by a name it builds
        from the statement, ~1k instructions a column (callgrind), a tuple is indexed."""
        named = ", ".join(":" + n for n in table.names)
        if statement.count(named) != 1 or statement.replace(named, "").count(":"):
            raise ValueError(f"not a whole-row statement of {table.name}: {statement}")
        return statement.replace(named, ", ".join("?" * len(table.names)))

    def insert_missing(self, table: Table, values: Mapping[str, str]) -> str:
        return (
            f"INSERT OR IGNORE INTO {table.name} ({', '.join(values)}) "
            f"VALUES ({', '.join(values.values())})"
        )


def schema(dialect: Dialect) -> list[str]:
    """CREATE statements for every table and index (idempotent in SQLite)."""
    statements: list[str] = []
    for table in (*TABLES.values(), *CLUSTER_TABLES):
        statements.append(dialect.create_table(table))
        statements.extend(dialect.create_index(table, index) for index in table.indexes)
    statements.extend(f"DROP INDEX IF EXISTS {name}" for name in RETIRED_INDEXES)
    return statements


def private_file(path: Path) -> None:
    """Create the database file with mode 0600 (only the service's user may open it;
    SQLite gives its -wal and -shm files the same mode), and tighten one this user
    owns that others could read: scripts must not read the store behind the API."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            with suppress(FileNotFoundError):
                info = name.stat()
                if info.st_uid == os.geteuid() and info.st_mode & 0o077:
                    name.chmod(0o600)
        return
    os.close(fd)


class _BatchConnection:
    """The connection as `SqlStore._transaction` sees it inside a write batch: its
    per-call commit and rollback are left to the batch (one commit at the end)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def cursor(self) -> sqlite3.Cursor:
        return self._db.cursor()

    def commit(self) -> None:
        """The batch commits once, at its end."""

    def rollback(self) -> None:
        """A failed statement undid itself (constraint errors roll back the statement
        only); anything worse ended the transaction, which `check_open` reports."""

    def check_open(self) -> None:
        if not self._db.in_transaction:
            raise sqlite3.OperationalError("the write batch's transaction was rolled back")


class SqliteStore(SqlStore):
    backend = "sqlite"
    dialect = SqliteDialect()
    driver_error = sqlite3.Error
    integrity_error = sqlite3.IntegrityError

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        for filters, sql in counts.STATS.items():
            self._sql[filter_key("kept_stats", filters)] = sql
        for name in JOB_ROW_WRITES:
            self._sql[name] = self.dialect.by_position(self._sql[name], TABLES["jobs"])
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        #: read-only, busy timeout 0: `jobs_revision` on the event loop never waits
        self._peek: sqlite3.Connection | None = None
        self._peek_lock = threading.Lock()
        #: set while `write_batch` holds the lock and its transaction is open
        self._batch: _BatchConnection | None = None
        #: WAL checkpoints off the writers' path (stores/sqlite_checkpoint.py)
        self.checkpointer: Checkpointer | None = None

    def open(self) -> None:
        if self._db is not None:
            return
        try:
            if self.path.is_dir():
                raise StoreUnavailable(f"{self.path} is a directory, not a database file")
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            private_file(self.path)
            db = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreUnavailable(f"{self.path} refused WAL mode (journal_mode={mode})")
            db.execute("PRAGMA synchronous=NORMAL")
            # statement journals (every write that fires the count triggers needs one)
            # and small sorts in memory: in a temp file, a journal cost each execution
            # insert 18 us more (measured); VACUUM switches back to files (_maintain)
            db.execute("PRAGMA temp_store=MEMORY")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # checkpoints run on the Checkpointer's thread; this is only its backstop
            db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            db.execute("BEGIN IMMEDIATE")
            for statement in schema(self.dialect):
                db.execute(statement)
            present = [row[1] for row in db.execute(JOB_COLUMNS)]
            filled = self._migrate_jobs(db.cursor(), present)
            if filled:
                log.info("%s: the jobs' slot columns added and filled (%d jobs)", self.path, filled)
            counted = db.execute(counts.TABLE_EXISTS).fetchone() is not None
            for statement in counts.create_statements(counted):
                db.execute(statement)
            self._seed_counters(db.cursor())
            for statement in revision.create_statements():
                db.execute(statement)
            db.execute("COMMIT")
            peek = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
            peek.execute("PRAGMA query_only=ON")
            checkpointer = Checkpointer(self._checkpoint_connection)
            checkpointer.start()
        except (StoreUnavailable, sqlite3.Error) as exc:
            db.close()
            if isinstance(exc, StoreUnavailable):
                raise
            raise StoreUnavailable(f"cannot use {self.path}: {exc}") from exc
        self._db, self._peek, self.checkpointer = db, peek, checkpointer

    def _job_binds(self, row: dict[str, Any]) -> Sequence[Any]:
        """In column order, as JOB_ROW_WRITES bind them (the row is built in that order)."""
        return tuple(row.values())

    def _checkpoint_connection(self) -> sqlite3.Connection:
        """The checkpointer's own connection: a busy timeout of 0, as a passive
        checkpoint waits for nobody anyway."""
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)

    # -- counts kept by triggers (stores/sqlite_counts.py) ------------------------------
    def execution_stats(self, owner: str | None = None) -> dict[str, int]:
        """Kept counts of finished executions plus a live count of the active ones: a
        few rows read, however long the history."""
        filters = {} if owner is None else {"owner": owner}
        rows = self._rows(filter_key("kept_stats", tuple(filters)), filters)
        return {str(status): int(count) for status, count in rows if count}

    def count_executions(
        self, *, job_id: str | None = None, owner: str | None = None, status: Status | None = None
    ) -> int:
        """From `execution_stats` unless a job is named (then a range of that job's
        index is counted: a job's own history is a slice of the whole)."""
        if job_id is not None:
            return super().count_executions(job_id=job_id, owner=owner, status=status)
        by_status = self.execution_stats(owner)
        return by_status.get(str(status), 0) if status is not None else sum(by_status.values())

    # -- the job table's revision (stores/sqlite_revision.py) ----------------------------
    def jobs_revision(self) -> int | None:
        """The kept revision, read on the peek connection: it waits neither for the
        store's lock nor for another process's (SQLITE_BUSY answers None at once; a
        WAL reader is not blocked by a writer anyway)."""
        with self._peek_lock:
            if self._peek is None:
                return None
            try:
                # fetchall: the statement runs to its end, so no read stays open
                rows = self._peek.execute(revision.READ).fetchall()
            except sqlite3.Error:
                return None
        return int(rows[0][0]) if rows else None

    def revised_render_jobs(
        self, owner: str | None, render: Callable[[Job], str]
    ) -> tuple[int | None, list[str]]:
        """The counter and the rows in one deferred read transaction (one snapshot);
        rendering after the lock is let go."""
        filters = {} if owner is None else {"owner": owner}
        statement = self._sql[filter_key("list_jobs", tuple(filters))]
        with self._connection() as db:
            if db is self._batch:  # this thread's own write batch: no committed snapshot
                return None, self.render_jobs(owner, render)
            try:
                db.execute("BEGIN")
                try:
                    counter = db.execute(revision.READ).fetchall()
                    rows = db.execute(statement, filters).fetchall()
                finally:
                    db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
        return (int(counter[0][0]) if counter else None), self._render_rows(rows, render)

    def close(self) -> None:
        checkpointer, self.checkpointer = self.checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        with self._peek_lock:
            if self._peek is not None:
                self._peek.close()
                self._peek = None
        with self._lock:
            if self._db is not None:
                with suppress(sqlite3.Error):
                    self._db.execute("PRAGMA optimize")
                self._db.close()
                self._db = None

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            if self._batch is not None:  # only the batch's own thread gets here
                yield self._batch
                return
            if self._db is None:
                raise StoreError(f"sqlite store {self.path} is not open")
            yield self._db

    def _begin(self, cursor: Any) -> None:
        if self.checkpointer is not None:
            self.checkpointer.wrote()
        if self._batch is not None:
            self._batch.check_open()
            return
        # IMMEDIATE takes the write lock up front, so another process cannot make this
        # transaction fail half-way with SQLITE_BUSY on its first write.
        cursor.execute("BEGIN IMMEDIATE")

    @contextmanager
    def write_batch(self) -> Iterator[None]:
        """Group commit: the single-statement writes this thread makes inside the block
        (the engine's job adds) share one transaction and one commit.

        Each write still fails on its own: a refused INSERT (a duplicate id) undoes only
        its own statement, as SQLite does for a constraint error, and the batch goes on.
        Other threads wait on the store's lock until the batch commits, so nobody reads
        a row that is not committed yet. If the commit fails, the block's writes are all
        rolled back and the error (a StoreError) is raised here. Only for writes of one
        statement: a multi-statement write that failed half-way would keep its first
        half, since its rollback cannot undo less than the whole batch."""
        with self._lock:
            if self._batch is not None:
                raise StoreError("write batches do not nest")
            if self._db is None:
                raise StoreError(f"sqlite store {self.path} is not open")
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            if self.checkpointer is not None:
                self.checkpointer.wrote()
            self._batch = _BatchConnection(db)
            try:
                yield
                self._batch.check_open()
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    with suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._failure(exc) from exc
                raise
            finally:
                self._batch = None

    def _maintain(self, task: str) -> dict[str, Any]:
        steps = {
            "rebuild_indexes": ["REINDEX"],
            "optimize_queries": ["ANALYZE", "PRAGMA optimize"],
            "clear_cache": ["PRAGMA shrink_memory"],
            # VACUUM copies the whole file through the temp store: on disk, not in memory
            # (put back to memory below whatever happens)
            "vacuum": ["PRAGMA temp_store=FILE", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"],
        }[task]
        with self._connection() as db:
            try:
                for statement in steps:
                    db.execute(statement).fetchall()
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            finally:
                with suppress(sqlite3.Error):
                    db.execute("PRAGMA temp_store=MEMORY")
        return {"done": steps, "file": str(self.path), "bytes": self.path.stat().st_size}
