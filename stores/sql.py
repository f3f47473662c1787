"""The shared SQL store: tables, every statement, and the Store methods over DB-API.

Each table keeps indexed scalar columns for what is filtered, sorted or counted, plus a
`doc` column with the whole record as JSON (`stores.codec`). A few job columns
(next_run_time, last_run_time, total_executions) are authoritative over the doc, so the
fire claim and the counter bump are single conditional UPDATEs, never a read-modify-write;
the run counters are `kept` columns, which a job update or replace never overwrites.
The fields the start-up load needs have columns too (stores/sql_slots.py), copies of
the document's written with it, so a million jobs start without a million JSON parses.

Both drivers take `:name` binds, so the statements are shared; a `Dialect` supplies only
what differs (column types, upsert, paging, "create if missing"). Every statement is
built by `build_statements`, so tests can enumerate them all. Backends implement
`_connection()` and `_maintain()`; everything else lives here.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from itertools import combinations
from typing import Any, TypeVar

from engine.errors import (
    ApiKeyNotFound,
    DuplicateEmail,
    ExecutionNotFound,
    JobExists,
    JobNotFound,
    NotFound,
    ServerNotFound,
    StoreError,
    UserNotFound,
)
from engine.gcpause import paused_gc
from engine.interfaces import abandons, record_row
from engine.model import TERMINAL_STATUSES, Execution, Job, Status
from stores.base import (
    RUN_COUNTERS,
    FireClaim,
    JobCounts,
    Store,
    check_collection,
    check_maintenance_task,
)
from stores.clone import clone
from stores.codec import loads, text_time, time_text
from stores.records import ApiKey, AuditEntry, KeyOwner, Server, User
from stores.rendered import RenderMemo
from stores.sql_cluster import SqlCluster, cluster_statements
from stores.sql_slots import (
    FIELD_COLUMNS,
    SLOT_COLUMNS,
    SLOT_FROM_RECORD,
    TIME_AT,
    SlotReader,
    covers,
    missing_columns,
    slot_statements,
    with_documents,
)
from stores.sql_tables import Column, Dialect, Index, Table

T = TypeVar("T")
log = logging.getLogger(__name__)

#: decoded job rows a store remembers (about 1.5 KB each)
DECODED_JOBS_LIMIT = 10_000
#: rows per round trip when streaming a whole table out
EXPORT_PAGE = 500
#: the filters list_executions/count_executions accept, in statement-name order
EXECUTION_FILTERS = ("job_id", "owner", "status")


JOBS = Table(
    "cw_jobs",
    Job,
    (
        Column("id", "key"),
        Column("owner", "text"),
        Column("created_at", "time"),
        Column("enabled", "int"),
        Column("paused", "int"),
        Column("next_run_time", "time"),
        Column("last_run_time", "time"),
        Column("total_executions", "int"),
        *SLOT_COLUMNS,
        Column("doc", "doc"),
    ),
    (
        Index("cw_jobs_created", ("created_at", "id")),
        Index("cw_jobs_owner", ("owner", "created_at")),
        # the load window pages by (next_run_time, id): one index range scan per page,
        # ties at one time included (engine/scheduling/window.py)
        Index("cw_jobs_next_run_id", ("next_run_time", "id")),
    ),
    overlay=("next_run_time", "last_run_time", "total_executions"),
    from_record=SLOT_FROM_RECORD,
    kept=RUN_COUNTERS,
)
EXECUTIONS = Table(
    "cw_executions",
    Execution,
    (
        Column("id", "key"),
        Column("job_id", "text"),
        Column("owner", "text"),
        Column("status", "text"),
        Column("created_at", "time"),
        Column("doc", "doc"),
    ),
    (
        Index("cw_executions_created", ("created_at", "id")),
        Index("cw_executions_job", ("job_id", "created_at")),
        Index("cw_executions_owner", ("owner", "created_at")),
        Index("cw_executions_status", ("status", "created_at")),
        # a job's or a user's executions of one status, newest first, and their counts
        # (the executions page's filters), read from the index alone
        Index("cw_executions_job_status", ("job_id", "status", "created_at", "id")),
        Index("cw_executions_owner_status", ("owner", "status", "created_at", "id")),
    ),
    derived={"status": lambda e: str(e.status)},
    fixed=("job_id", "owner", "created_at"),
)
USERS = Table(
    "cw_users",
    User,
    (
        Column("id", "key"),
        Column("email_key", "text"),
        Column("created_at", "time"),
        Column("doc", "doc"),
    ),
    (
        Index("cw_users_email", ("email_key",), unique=True),
        Index("cw_users_created", ("created_at", "id")),
    ),
    derived={"email_key": lambda u: u.email.casefold()},
)
SERVERS = Table(
    "cw_servers",
    Server,
    (
        Column("id", "key"),
        Column("user_id", "text"),
        Column("created_at", "time"),
        Column("doc", "doc"),
    ),
    (
        Index("cw_servers_user", ("user_id", "created_at")),
        Index("cw_servers_created", ("created_at", "id")),
    ),
)
API_KEYS = Table(
    "cw_api_keys",
    ApiKey,
    (
        Column("id", "key"),
        Column("user_id", "text"),
        Column("key_hash", "text"),
        Column("created_at", "time"),
        Column("last_used_at", "time"),
        Column("revoked_at", "time"),
        Column("doc", "doc"),
    ),
    (
        Index("cw_api_keys_hash", ("key_hash",), unique=True),
        Index("cw_api_keys_user", ("user_id", "created_at")),
    ),
    # use and revocation are single UPDATEs of their column, which wins over the doc
    overlay=("last_used_at", "revoked_at"),
    kept=("last_used_at", "revoked_at"),
)
AUDIT = Table(
    "cw_audit",
    AuditEntry,
    (
        Column("id", "key"),
        Column("user_id", "text"),
        Column("created_at", "time"),
        Column("doc", "doc"),
    ),
    (
        Index("cw_audit_created", ("created_at", "id")),
        Index("cw_audit_user", ("user_id", "created_at")),
    ),
)
#: tables by the collection name the Store interface uses
TABLES: dict[str, Table] = {
    "jobs": JOBS,
    "executions": EXECUTIONS,
    "users": USERS,
    "servers": SERVERS,
    "api_keys": API_KEYS,
    "audit": AUDIT,
}
#: indexes earlier versions made that nothing reads any more: dropped on open, so a job
#: write no longer updates them (cw_jobs_next_run: now cw_jobs_next_run_id)
RETIRED_INDEXES = ("cw_jobs_next_run",)
#: the filters list_audit_entries/count_audit_entries accept, in statement-name order
AUDIT_FILTERS = ("user_id", "since")


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


TERMINAL = _quoted([str(s) for s in TERMINAL_STATUSES])


def _where(columns: Sequence[str]) -> str:
    return (" WHERE " + " AND ".join(f"{c} = :{c}" for c in columns)) if columns else ""


def _execution_where(filters: Sequence[str]) -> str:
    """The WHERE of an executions page or count. With a job named, the owner test is
    written `+owner` (the same test; unary plus keeps an index from being chosen for
    it): a job's executions are a slice of its owner's, so the job's index must lead,
    which a planner without statistics cannot know (it took the owner's index and read
    every one of that user's executions to find one job's)."""
    tests = [
        f"+{c} = :{c}" if c == "owner" and "job_id" in filters else f"{c} = :{c}" for c in filters
    ]
    return (" WHERE " + " AND ".join(tests)) if tests else ""


def filter_key(prefix: str, filters: Sequence[str]) -> str:
    """Statement name for one combination of optional filters ("list_executions:owner")."""
    return f"{prefix}:{','.join(filters)}"


def build_statements(dialect: Dialect) -> dict[str, str]:
    """Every DML/query statement the SQL store issues, by name."""
    sql: dict[str, str] = {}
    for short, table in TABLES.items():
        names = table.names
        sql[f"insert_{short}"] = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join(':' + n for n in names)})"
        )
        sql[f"upsert_{short}"] = dialect.upsert(table)
        assignments = ", ".join(f"{n} = :{n}" for n in table.updated)
        sql[f"update_{short}"] = f"UPDATE {table.name} SET {assignments} WHERE id = :id"
        sql[f"delete_{short}"] = f"DELETE FROM {table.name} WHERE id = :id"
        select = f"SELECT {table.read_columns} FROM {table.name}"
        sql[f"get_{short}"] = f"{select} WHERE id = :id"
        sql[f"export_{short}_first"] = dialect.page(
            f"SELECT id, {table.read_columns} FROM {table.name} ORDER BY id"
        )
        sql[f"export_{short}_after"] = dialect.page(
            f"SELECT id, {table.read_columns} FROM {table.name} WHERE id > :after ORDER BY id"
        )
    for short, owner_column in (("jobs", "owner"), ("users", None), ("servers", "user_id")):
        table = TABLES[short]
        select = f"SELECT {table.read_columns} FROM {table.name}"
        sql[filter_key(f"list_{short}", ())] = f"{select} ORDER BY created_at, id"
        if owner_column:
            sql[filter_key(f"list_{short}", (owner_column,))] = (
                f"{select}{_where([owner_column])} ORDER BY created_at, id"
            )
    for size in range(len(EXECUTION_FILTERS) + 1):
        for filters in combinations(EXECUTION_FILTERS, size):
            where = _execution_where(filters)
            sql[filter_key("list_executions", filters)] = dialect.page(
                f"SELECT doc FROM cw_executions{where} ORDER BY created_at DESC, id DESC"
            )
            sql[filter_key("count_executions", filters)] = (
                f"SELECT COUNT(*) FROM cw_executions{where}"
            )
    for filters in ((), ("owner",)):
        where = _where(filters)
        sql[filter_key("execution_stats", filters)] = (
            f"SELECT status, COUNT(*) FROM cw_executions{where} GROUP BY status"
        )
        sql[filter_key("count_jobs", filters)] = (
            "SELECT COUNT(*), COALESCE(SUM(enabled), 0), COALESCE(SUM(paused), 0) "
            f"FROM cw_jobs{where}"
        )
    claim = (
        "UPDATE cw_jobs SET next_run_time = :next_run_time, "
        "last_run_time = CASE WHEN :fired = 1 THEN :expected ELSE last_run_time END "
        "WHERE id = :id AND next_run_time "
    )
    sql["claim_fire"] = claim + "= :expected"
    sql["claim_fire_unscheduled"] = claim + "IS NULL"
    sql["finish_job"] = (
        "UPDATE cw_jobs SET total_executions = total_executions + 1, "
        "last_run_time = CASE WHEN :started IS NOT NULL "
        "AND (last_run_time IS NULL OR last_run_time < :started) "
        "THEN :started ELSE last_run_time END WHERE id = :job_id"
    )
    # what a crash leaves behind: runs that started (abandoned); the claimed fires that
    # did not start are taken over (take_over); scheduled retries are simply reloaded
    sql["left_running"] = f"SELECT doc FROM cw_executions WHERE status = '{Status.RUNNING}'"
    sql.update(_key_and_audit_statements(dialect))
    for filters in ((), ("job_id",)):
        where = f"WHERE created_at < :cutoff{''.join(f' AND {c} = :{c}' for c in filters)}"
        terminal = f"status IN ({TERMINAL})"
        sql[filter_key("delete_executions_before", filters)] = (
            f"DELETE FROM cw_executions {where} AND {terminal}"
        )
        # oldest first through the time index, the status tested row by row (`+status`
        # keeps the status index out): a batch then reads about its own size, where
        # the status index made it collect and sort every expired execution first
        sql[filter_key("expired_executions", filters)] = dialect.page(
            f"SELECT id FROM cw_executions {where} AND +{terminal} ORDER BY created_at, id"
        )
    # by id, and only while still terminal: retention never deletes an active execution
    sql["delete_terminal_execution"] = (
        f"DELETE FROM cw_executions WHERE id = :id AND status IN ({TERMINAL})"
    )
    return sql


def _key_and_audit_statements(dialect: Dialect) -> dict[str, str]:
    sql: dict[str, str] = {}
    keys = f"SELECT {API_KEYS.read_columns} FROM {API_KEYS.name}"
    sql["find_api_key"] = f"{keys} WHERE key_hash = :key_hash"
    sql["find_key_owner"] = (
        "SELECT k.id, k.key_hash, k.user_id, k.revoked_at, k.last_used_at, u.doc "
        f"FROM {API_KEYS.name} k JOIN {USERS.name} u ON u.id = k.user_id "
        "WHERE k.key_hash = :key_hash"
    )
    active = "revoked_at IS NULL ORDER BY created_at, id"
    sql[filter_key("list_api_keys", ())] = f"{keys} WHERE {active}"
    sql[filter_key("list_api_keys", ("user_id",))] = f"{keys} WHERE user_id = :user_id AND {active}"
    sql["revoke_api_key"] = (
        f"UPDATE {API_KEYS.name} SET revoked_at = COALESCE(revoked_at, :stamp) WHERE id = :id"
    )
    sql["touch_api_key"] = f"UPDATE {API_KEYS.name} SET last_used_at = :stamp WHERE id = :id"
    sql["any_api_key"] = dialect.page(f"SELECT id FROM {API_KEYS.name} ORDER BY id")
    tests = {"user_id": "user_id = :user_id", "since": "created_at >= :since"}
    for size in range(len(AUDIT_FILTERS) + 1):
        for filters in combinations(AUDIT_FILTERS, size):
            where = (" WHERE " + " AND ".join(tests[f] for f in filters)) if filters else ""
            sql[filter_key("list_audit", filters)] = dialect.page(
                f"SELECT doc FROM {AUDIT.name}{where} ORDER BY created_at DESC, id DESC"
            )
            sql[filter_key("count_audit", filters)] = f"SELECT COUNT(*) FROM {AUDIT.name}{where}"
    sql["delete_audit_before"] = f"DELETE FROM {AUDIT.name} WHERE created_at < :cutoff"
    return sql


class _Duplicate(Exception):
    """A unique constraint refused a write; the caller knows which conflict it means."""


class SqlStore(SqlCluster, Store):
    """Store methods over a DB-API connection with `:name` binds."""

    dialect: Dialect
    #: the driver's root error and its unique-constraint error
    driver_error: type[Exception] = Exception
    integrity_error: type[Exception] = Exception

    def __init__(self) -> None:
        self._sql = {
            **build_statements(self.dialect),
            **cluster_statements(self.dialect),
            **slot_statements(self.dialect, JOBS.name),
        }
        #: job rows already decoded, by their values (see `_decode_job`)
        self._decoded: dict[tuple[Any, ...], Job] = {}
        #: job rows already rendered, by their values (`render_jobs`)
        self._rendered = RenderMemo()

    # -- what a backend supplies -----------------------------------------------------
    @abstractmethod
    def _connection(self) -> AbstractContextManager[Any]:
        """A DB-API connection for this caller's exclusive use until the block ends."""

    @abstractmethod
    def _maintain(self, task: str) -> dict[str, Any]:
        """Run one (already checked) maintenance task."""

    def _begin(self, cursor: Any) -> None:
        """Start a write transaction (drivers that begin implicitly do nothing)."""

    def _execute(self, cursor: Any, sql: str, params: Mapping[str, Any] | Sequence[Any]) -> None:
        cursor.execute(sql, params)

    def _execute_many(
        self, cursor: Any, sql: str, rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]
    ) -> None:
        cursor.executemany(sql, rows)

    # -- plumbing --------------------------------------------------------------------
    def _failure(self, exc: Exception) -> StoreError:
        message = " ".join(str(exc).split()) or type(exc).__name__
        return StoreError(f"{self.backend} store failed: {message}")

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Any]:
        """A cursor; with write=True everything done through it commits or none of it."""
        try:
            with self._connection() as connection:
                cursor = connection.cursor()
                try:
                    if write:
                        self._begin(cursor)
                    yield cursor
                    if write:
                        connection.commit()
                except BaseException:
                    if write:
                        with suppress(self.driver_error):
                            connection.rollback()
                    raise
                finally:
                    with suppress(self.driver_error):
                        cursor.close()
        except self.integrity_error as exc:
            raise _Duplicate(str(exc)) from exc
        except self.driver_error as exc:
            raise self._failure(exc) from exc

    def _write(self, name: str, params: Mapping[str, Any]) -> int:
        """Run one write statement in its own transaction; return the rows it touched."""
        with self._transaction() as cursor:
            self._execute(cursor, self._sql[name], params)
            return int(cursor.rowcount)

    def _rows(self, name: str, params: Mapping[str, Any]) -> list[Any]:
        with self._transaction(write=False) as cursor:
            self._execute(cursor, self._sql[name], params)
            return list(cursor.fetchall())

    def _get(self, short: str, record_id: str, missing: type[NotFound]) -> Any:
        rows = self._rows(f"get_{short}", {"id": record_id})
        if not rows:
            raise missing(record_id)
        return self._decoder(short)(rows[0])

    def _list(self, short: str, filters: Mapping[str, Any]) -> list[Any]:
        name = filter_key(f"list_{short}", tuple(filters))
        rows = self._rows(name, filters)
        # more rows than the memo holds (loading every job at start) would only churn it
        decode = TABLES[short].decode if len(rows) > DECODED_JOBS_LIMIT else self._decoder(short)
        with paused_gc(len(rows)):
            return [decode(row) for row in rows]

    def _decoder(self, short: str) -> Callable[[Sequence[Any]], Any]:
        return self._decode_job if short == "jobs" else TABLES[short].decode

    def _decode_job(self, row: Sequence[Any]) -> Job:
        """A job row as a Job, remembered by the row's exact values.

        Decoding is a pure function of the row (the JSON doc and the columns overlaid
        on it), so a row seen before gives back a copy of what it decoded to, with its
        own args and kwargs (stores.clone): a job list read again costs a few
        microseconds per job instead of ~25. A changed job is a different row, so
        nothing stale is ever returned. Bounded: the table starts afresh when full.
        """
        key = tuple(row)
        try:
            known = self._decoded.get(key)
        except TypeError:  # a driver value that cannot be a key: just decode
            decoded: Job = JOBS.decode(row)
            return decoded
        if known is None:
            known = JOBS.decode(row)
            if len(self._decoded) >= DECODED_JOBS_LIMIT:
                self._decoded.clear()
            self._decoded[key] = known
        job: Job = clone(known)
        return job

    def _update(self, short: str, obj: Any, missing: type[NotFound]) -> None:
        if self._write(f"update_{short}", TABLES[short].update_row(obj)) == 0:
            raise missing(obj.id)

    def _delete(self, short: str, record_id: str, missing: type[NotFound]) -> None:
        if self._write(f"delete_{short}", {"id": record_id}) == 0:
            raise missing(record_id)

    # -- jobs ------------------------------------------------------------------------
    def add_job(self, job: Job, *, replace: bool = False) -> None:
        name = "upsert_jobs" if replace else "insert_jobs"
        try:
            self._write_job(name, self._job_binds(JOBS.row(job)), job.id)
        except _Duplicate:
            raise JobExists(job.id) from None

    def _job_binds(self, row: dict[str, Any]) -> Mapping[str, Any] | Sequence[Any]:
        """A job row's binds for insert_jobs and upsert_jobs: by name here; a backend
        whose two statements bind by position (SQLite) gives the values in column order."""
        return row

    def update_job(self, job: Job) -> None:
        if self._write_job("update_jobs", JOBS.update_row(job), job.id) == 0:
            raise JobNotFound(job.id)

    def remove_job(self, job_id: str) -> None:
        if self._write_job("delete_jobs", {"id": job_id}, job_id) == 0:
            raise JobNotFound(job_id)

    def _write_job(self, name: str, params: Mapping[str, Any] | Sequence[Any], job_id: str) -> int:
        """One job write and its entry in the change feed, in one transaction (a write
        that touched no row records no change)."""
        with self._transaction() as cursor:
            self._execute(cursor, self._sql[name], params)
            touched = int(cursor.rowcount)
            if touched:
                self._append_change(cursor, job_id)
            return touched

    def get_job(self, job_id: str) -> Job:
        job: Job = self._get("jobs", job_id, JobNotFound)
        return job

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """One read transaction (one lock, one connection checkout) for the batch."""
        rows = []
        with self._transaction(write=False) as cursor:
            for job_id in job_ids:
                self._execute(cursor, self._sql["get_jobs"], {"id": job_id})
                rows.extend(cursor.fetchall())
        jobs = [self._decode_job(row) for row in rows]
        return {job.id: job for job in jobs}

    def list_jobs(self, owner: str | None = None) -> list[Job]:
        return self._list("jobs", {} if owner is None else {"owner": owner})

    def job_records(
        self, page: int = 1000, fields: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Keyset pages by id (as `export`): each page is one short read that holds the
        store's lock only while its rows are fetched; decoding happens outside it.
        When the job columns of stores/sql_slots.py hold every one of `fields` (the
        start-up load's), those are read and no document is parsed; otherwise whole
        documents are (picking fields out of the JSON with SQLite's json_extract was
        measured no faster than orjson's whole parse)."""
        if covers(fields):
            reader = SlotReader()
            for rows in self.job_rows(page):
                yield [reader.record(row) for row in rows]
            return
        yield from self._pages("export_jobs", page, lambda row: JOBS.record(row[1:]), 0)

    def job_rows(
        self, page: int = 1000, due_by: datetime | None = None
    ) -> Iterator[list[Sequence[Any]]]:
        """The slot columns (stores/sql_slots.py) as stored, which the contract allows:
        the trigger and notify as JSON text, next_run_time as text; no Python work per
        row. A row whose columns are empty is read from its document."""
        if due_by is None:
            pages = self._keyset("rows", page, 0)
        else:
            pages = self._keyset("due_rows", page, 0, {"until": time_text(due_by)})
        for stored in pages:
            rows = with_documents(stored, self._row_from_document)
            if rows:
                yield rows

    def due_job_rows(
        self, after: tuple[datetime, str | None], until: datetime, limit: int = 1000
    ) -> list[Sequence[Any]]:
        """Range scans of the (next_run_time, id) index (the times are fixed-width UTC
        text, so their order is the times' order): the rest of the cursor's own time,
        then the times after it. A row left out for its document (the job is gone) is
        made up for by reading on, so a short page still means the window's end."""
        wanted = max(limit, 1)
        since, after_id = time_text(after[0]), after[1]
        rows: list[Sequence[Any]] = []
        while len(rows) < wanted:
            params: dict[str, Any] = {"since": since, "limit": wanted - len(rows), "offset": 0}
            if after_id is None:
                name, params["until"] = "window_rows_from", time_text(until)
            else:
                name, params["after"] = "window_rows_tied", after_id
            read = self._rows(name, params)
            rows += with_documents(read, self._row_from_document)
            if len(read) == params["limit"]:
                since, after_id = read[-1][TIME_AT], read[-1][0]
            elif after_id is not None:
                after_id = None  # the cursor's time is done: on to the later ones
            else:
                break
        return rows

    def _row_from_document(self, job_id: str) -> tuple[Any, ...] | None:
        """The row of a job whose slot columns are empty, from its document; None when
        the job is gone or its document does not decode (logged: such a job cannot be
        scheduled, and one bad row must not stop a load or its window)."""
        found = self._rows("row_document", {"id": job_id})
        if not found:
            return None
        try:
            return record_row(self._slot_fallback(*found[0]))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning(
                "job %s: its stored document does not decode (%s); not scheduled", job_id, exc
            )
            return None

    def _pages(
        self, prefix: str, page: int, decode: Callable[[Sequence[Any]], T], key: int
    ) -> Iterator[list[T]]:
        """`_keyset` pages, decoded a page at a time outside the store's lock."""
        for rows in self._keyset(prefix, page, key):
            yield [decode(row) for row in rows]

    def _keyset(
        self, prefix: str, page: int, key: int, binds: Mapping[str, Any] | None = None
    ) -> Iterator[list[Any]]:
        """Non-empty pages of rows of the `{prefix}_first` / `{prefix}_after` statements
        (with `binds` besides the paging ones), keyset-paged by the id in column `key`."""
        params: dict[str, Any] = {**(binds or {}), "limit": max(page, 1), "offset": 0}
        name = f"{prefix}_first"
        while True:
            rows = self._rows(name, params)
            if rows:
                yield rows
            if len(rows) < params["limit"]:
                return
            name, params["after"] = f"{prefix}_after", rows[-1][key]

    @staticmethod
    def _slot_fallback(doc: str, next_run_time: str | None) -> dict[str, Any]:
        """A job's record from its document, for a row whose slot columns are empty."""
        record = JOBS.record((doc, next_run_time, None, 0))
        return {name: record[name] for name in FIELD_COLUMNS if name in record}

    def _migrate_jobs(self, cursor: Any, present: Collection[str]) -> int:
        """Give a jobs table made before the slot columns (stores/sql_slots.py) those
        columns, filled from each job's document in the caller's transaction; return how
        many rows were filled (0: nothing was missing). A document that no longer
        decodes leaves its row's columns empty, so start-up reads that document."""
        missing = missing_columns(present)
        if not missing:
            return 0
        for column in missing:
            self._execute(cursor, self._sql[f"add_column:{column.name}"], {})
        filled = 0
        params: dict[str, Any] = {"limit": EXPORT_PAGE, "offset": 0}
        name = "export_jobs_first"
        while True:
            self._execute(cursor, self._sql[name], params)
            rows = cursor.fetchall()
            binds = []
            for row in rows:
                try:
                    job = JOBS.decode(row[1:])
                except (KeyError, TypeError, ValueError):
                    continue
                binds.append({"id": row[0], **JOBS.values(job, SLOT_COLUMNS)})
            if binds:
                self._execute_many(cursor, self._sql["backfill_slots"], binds)
                filled += len(binds)
            if len(rows) < EXPORT_PAGE:
                return filled
            name, params["after"] = "export_jobs_after", rows[-1][0]

    def render_jobs(self, owner: str | None, render: Callable[[Job], str]) -> list[str]:
        """`list_jobs`' one query, each row's text remembered by the row's exact values
        (stores/rendered.py): a list read again costs a lookup per unchanged job, not a
        decode, a copy, a view and its JSON (~35 us a job on the scheduler surface)."""
        filters = {} if owner is None else {"owner": owner}
        rows = self._rows(filter_key("list_jobs", tuple(filters)), filters)
        return self._render_rows(rows, render)

    def _render_rows(self, rows: Sequence[Any], render: Callable[[Job], str]) -> list[str]:
        return self._rendered.render([tuple(row) for row in rows], JOBS.decode, render)

    def count_jobs(self, owner: str | None = None) -> JobCounts:
        filters = {} if owner is None else {"owner": owner}
        total, enabled, paused = self._rows(filter_key("count_jobs", tuple(filters)), filters)[0]
        return JobCounts(total=int(total), enabled=int(enabled), paused=int(paused))

    def claim_fire(
        self,
        job_id: str,
        expected_next_run_time: datetime | None,
        next_run_time: datetime | None,
        executions: Sequence[Execution],
    ) -> bool:
        return self._claim_all([(job_id, expected_next_run_time, next_run_time, executions)])[0]

    def claim_fires(self, claims: Sequence[FireClaim]) -> list[bool]:
        """Every claim in one transaction: one commit for a burst of due fires."""
        return self._claim_all(
            [(c.job_id, c.expected_next_run_time, c.next_run_time, c.executions) for c in claims]
        )

    def _claim_all(
        self,
        claims: Sequence[tuple[str, datetime | None, datetime | None, Sequence[Execution]]],
    ) -> list[bool]:
        """Encode every bind first, then run the claims in one transaction: the JSON and
        time text are built outside the store lock, which the workers contend for."""
        prepared = [
            (
                "claim_fire" if expected is not None else "claim_fire_unscheduled",
                {
                    "id": job_id,
                    "expected": time_text(expected),
                    "next_run_time": time_text(next_run_time),
                    "fired": 1 if executions else 0,
                },
                [EXECUTIONS.row(e) for e in executions],
            )
            for job_id, expected, next_run_time, executions in claims
        ]
        with self._transaction() as cursor:
            return [self._claim(cursor, *claim) for claim in prepared]

    def _claim(
        self, cursor: Any, name: str, params: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> bool:
        """One conditional UPDATE; the executions are written only when it matched."""
        self._execute(cursor, self._sql[name], params)
        if cursor.rowcount != 1:
            return False
        if rows:
            self._execute_many(cursor, self._sql["upsert_executions"], rows)
        return True

    # -- executions ------------------------------------------------------------------
    def add_execution(self, execution: Execution) -> None:
        self._write("upsert_executions", EXECUTIONS.row(execution))

    def update_execution(self, execution: Execution) -> None:
        self._update("executions", execution, ExecutionNotFound)

    def finish_execution(self, execution: Execution) -> None:
        binds = self._finish_binds(execution)  # encoded before the lock is taken
        with self._transaction() as cursor:
            if not self._finish(cursor, *binds):
                raise ExecutionNotFound(execution.id)

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        """The whole batch in one transaction: one commit for many executions."""
        running = [EXECUTIONS.update_row(e) for e in started]
        done = [self._finish_binds(e) for e in finished]
        with self._transaction() as cursor:
            if running:
                self._execute_many(cursor, self._sql["update_executions"], running)
            for binds in done:
                self._finish(cursor, *binds)  # a deleted execution counts for nothing

    def _finish(self, cursor: Any, row: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
        """Write a terminal execution and bump its job's counters, in the caller's
        transaction; False (nothing bumped) when the execution is not stored."""
        self._execute(cursor, self._sql["update_executions"], row)
        if cursor.rowcount == 0:
            return False
        self._execute(cursor, self._sql["finish_job"], params)
        return True

    @staticmethod
    def _finish_binds(execution: Execution) -> tuple[dict[str, Any], dict[str, Any]]:
        """The execution's row, and the job counter bump's binds."""
        params = {"job_id": execution.job_id, "started": time_text(execution.started_at)}
        return EXECUTIONS.update_row(execution), params

    def get_execution(self, execution_id: str) -> Execution:
        execution: Execution = self._get("executions", execution_id, ExecutionNotFound)
        return execution

    @staticmethod
    def _execution_filters(
        job_id: str | None, owner: str | None, status: Status | None
    ) -> dict[str, Any]:
        values = {
            "job_id": job_id,
            "owner": owner,
            "status": None if status is None else str(status),
        }
        return {name: values[name] for name in EXECUTION_FILTERS if values[name] is not None}

    def list_executions(
        self,
        *,
        job_id: str | None = None,
        owner: str | None = None,
        status: Status | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Execution]:
        filters = self._execution_filters(job_id, owner, status)
        name = filter_key("list_executions", tuple(filters))
        rows = self._rows(name, {**filters, "limit": max(limit, 0), "offset": max(offset, 0)})
        return [EXECUTIONS.decode(row) for row in rows]

    def count_executions(
        self, *, job_id: str | None = None, owner: str | None = None, status: Status | None = None
    ) -> int:
        filters = self._execution_filters(job_id, owner, status)
        return int(self._rows(filter_key("count_executions", tuple(filters)), filters)[0][0])

    def execution_stats(self, owner: str | None = None) -> dict[str, int]:
        filters = {} if owner is None else {"owner": owner}
        rows = self._rows(filter_key("execution_stats", tuple(filters)), filters)
        return {str(status): int(count) for status, count in rows}

    def abandon_running(
        self,
        now: datetime,
        message: str,
        *,
        keep_nodes: Collection[str] = (),
        only_nodes: Collection[str] | None = None,
    ) -> list[Execution]:
        with self._transaction() as cursor:
            self._execute(cursor, self._sql["left_running"], {})
            executions = [
                e
                for e in (EXECUTIONS.decode(row) for row in cursor.fetchall())
                if abandons(e.node, keep_nodes, only_nodes)
            ]
            for execution in executions:
                execution.status = Status.ABANDONED
                execution.completed_at = now
                execution.error = message
            if executions:
                rows = [EXECUTIONS.update_row(e) for e in executions]
                self._execute_many(cursor, self._sql["update_executions"], rows)
            return executions

    def take_over(self, from_node: str | None, to_node: str | None, note: str) -> list[Execution]:
        with self._transaction() as cursor:
            self._execute(cursor, self._sql["queued_executions"], {})
            found = [EXECUTIONS.decode(row) for row in cursor.fetchall()]
            taken = [e for e in found if e.node == from_node]
            for execution in taken:
                execution.node = to_node
                execution.output += note
            if taken:
                rows = [EXECUTIONS.update_row(e) for e in taken]
                self._execute_many(cursor, self._sql["update_executions"], rows)
        return sorted(taken, key=lambda e: (e.created_at, e.id))

    def start_claimed(self, execution: Execution) -> bool:
        row = EXECUTIONS.update_row(execution)  # encoded before the lock is taken
        with self._transaction() as cursor:
            self._execute(cursor, self._sql["queued_execution"], {"id": execution.id})
            found = cursor.fetchone()
            if found is None or EXECUTIONS.decode(found).node != execution.node:
                return False
            self._execute(cursor, self._sql["update_executions"], row)
            return True

    def delete_executions_before(
        self, cutoff: datetime, *, job_id: str | None = None, limit: int | None = None
    ) -> int:
        params: dict[str, Any] = {"cutoff": time_text(cutoff)}
        if job_id is not None:
            params["job_id"] = job_id
        filters = tuple(name for name in ("job_id",) if name in params)
        if limit is None:
            return self._write(filter_key("delete_executions_before", filters), params)
        page = {**params, "limit": max(limit, 0), "offset": 0}
        with self._transaction() as cursor:  # one batch: select and delete in one commit
            self._execute(cursor, self._sql[filter_key("expired_executions", filters)], page)
            ids = [{"id": row[0]} for row in cursor.fetchall()]
            if not ids:
                return 0
            self._execute_many(cursor, self._sql["delete_terminal_execution"], ids)
            return int(cursor.rowcount)

    # -- users -----------------------------------------------------------------------
    def add_user(self, user: User) -> None:
        try:
            self._write("upsert_users", USERS.row(user))
        except _Duplicate:
            raise DuplicateEmail(user.email) from None

    def get_user(self, user_id: str) -> User:
        user: User = self._get("users", user_id, UserNotFound)
        return user

    def list_users(self) -> list[User]:
        return self._list("users", {})

    def update_user(self, user: User) -> None:
        try:
            self._update("users", user, UserNotFound)
        except _Duplicate:
            raise DuplicateEmail(user.email) from None

    def delete_user(self, user_id: str) -> None:
        self._delete("users", user_id, UserNotFound)

    # -- servers ---------------------------------------------------------------------
    def add_server(self, server: Server) -> None:
        self._write("upsert_servers", SERVERS.row(server))

    def get_server(self, server_id: str) -> Server:
        server: Server = self._get("servers", server_id, ServerNotFound)
        return server

    def list_servers(self, user_id: str | None = None) -> list[Server]:
        return self._list("servers", {} if user_id is None else {"user_id": user_id})

    def update_server(self, server: Server) -> None:
        self._update("servers", server, ServerNotFound)

    def delete_server(self, server_id: str) -> None:
        self._delete("servers", server_id, ServerNotFound)

    # -- API keys --------------------------------------------------------------------
    def add_api_key(self, key: ApiKey) -> None:
        try:
            self._write("insert_api_keys", API_KEYS.row(key))
        except _Duplicate as exc:
            raise StoreError(f"{self.backend} store failed: API key exists ({exc})") from None

    def get_api_key(self, key_id: str) -> ApiKey:
        key: ApiKey = self._get("api_keys", key_id, ApiKeyNotFound)
        return key

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        rows = self._rows("find_api_key", {"key_hash": key_hash})
        if not rows:
            return None
        key: ApiKey = API_KEYS.decode(rows[0])
        return key

    def find_key_owner(self, key_hash: str) -> KeyOwner | None:
        """One joined read of scalar columns and the user's role from its document:
        the per-request check, at a third of the cost of two decoded lookups."""
        rows = self._rows("find_key_owner", {"key_hash": key_hash})
        if not rows:
            return None
        key_id, found_hash, user_id, revoked_at, last_used_at, user_doc = rows[0]
        role = str(loads(user_doc).get("role", "user"))
        return KeyOwner(
            key_id, found_hash, user_id, role, revoked_at is not None, text_time(last_used_at)
        )

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        return self._list("api_keys", {} if user_id is None else {"user_id": user_id})

    def revoke_api_key(self, key_id: str, when: datetime) -> None:
        if self._write("revoke_api_key", {"id": key_id, "stamp": time_text(when)}) == 0:
            raise ApiKeyNotFound(key_id)

    def touch_api_key(self, key_id: str, when: datetime) -> None:
        self._write("touch_api_key", {"id": key_id, "stamp": time_text(when)})

    def has_api_keys(self) -> bool:
        return bool(self._rows("any_api_key", {"limit": 1, "offset": 0}))

    # -- audit trail -----------------------------------------------------------------
    def add_audit_entries(self, entries: Sequence[AuditEntry]) -> None:
        rows = [AUDIT.row(e) for e in entries]
        if not rows:
            return
        with self._transaction() as cursor:
            self._execute_many(cursor, self._sql["insert_audit"], rows)

    @staticmethod
    def _audit_filters(user_id: str | None, since: datetime | None) -> dict[str, Any]:
        values = {"user_id": user_id, "since": time_text(since)}
        return {name: values[name] for name in AUDIT_FILTERS if values[name] is not None}

    def list_audit_entries(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        filters = self._audit_filters(user_id, since)
        name = filter_key("list_audit", tuple(filters))
        rows = self._rows(name, {**filters, "limit": max(limit, 0), "offset": max(offset, 0)})
        return [AUDIT.decode(row) for row in rows]

    def count_audit_entries(
        self, *, user_id: str | None = None, since: datetime | None = None
    ) -> int:
        filters = self._audit_filters(user_id, since)
        return int(self._rows(filter_key("count_audit", tuple(filters)), filters)[0][0])

    def delete_audit_before(self, cutoff: datetime) -> int:
        return self._write("delete_audit_before", {"cutoff": time_text(cutoff)})

    # -- whole collections -----------------------------------------------------------
    def export(self, collection: str) -> Iterator[dict[str, Any]]:
        check_collection(collection)
        return self._export(collection)

    def _export(self, collection: str) -> Iterator[dict[str, Any]]:
        """Keyset paging by id: each page is one short read, never a held cursor."""
        table = TABLES[collection]
        page: dict[str, Any] = {"limit": EXPORT_PAGE, "offset": 0}
        name = f"export_{collection}_first"
        while True:
            rows = self._rows(name, page)
            for row in rows:
                record = table.decode(row[1:]).to_record()
                record.pop("password_encrypted", None)
                yield record
            if len(rows) < EXPORT_PAGE:
                return
            name, page["after"] = f"export_{collection}_after", rows[-1][0]

    def maintenance(self, task: str) -> dict[str, Any]:
        check_maintenance_task(task)
        return {"task": task, "backend": self.backend, **self._maintain(task)}
