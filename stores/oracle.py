"""The Oracle store: python-oracledb in thin mode (no Instant Client), over a pool.

The tables are those of `stores.sql` with Oracle types (VARCHAR2, NUMBER, CLOB for the
JSON doc). Oracle has no "CREATE ... IF NOT EXISTS" before 23ai, so `open()` looks in
the data dictionary first and treats ORA-00955 (a concurrent start made it) as done.
Upserts are MERGE, paging is OFFSET/FETCH. Every statement text this module sends is
returned by `all_statements()`, which tests parse as Oracle SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar

import oracledb

from engine.errors import StoreError, StoreUnavailable
from stores.base import MAINTENANCE_TASKS
from stores.sql import RETIRED_INDEXES, TABLES, SqlStore, build_statements
from stores.sql_cluster import CLUSTER_TABLES, cluster_statements
from stores.sql_slots import slot_statements
from stores.sql_tables import Dialect, Table

TABLE_EXISTS = "SELECT COUNT(*) FROM user_tables WHERE table_name = :name"
INDEX_EXISTS = "SELECT COUNT(*) FROM user_indexes WHERE index_name = :name"
TABLE_COLUMNS = "SELECT column_name FROM user_tab_columns WHERE table_name = :name"
CURRENT_SCHEMA = "SELECT SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA') FROM dual"
FLUSH_SHARED_POOL = "ALTER SYSTEM FLUSH SHARED_POOL"
#: the PL/SQL procedure optimize_queries calls (by callproc, not as statement text)
GATHER_STATS = "DBMS_STATS.GATHER_TABLE_STATS"
#: ORA- codes that mean "this account or tablespace cannot do that maintenance step"
NOT_PERMITTED = {1031, 10635}
ALREADY_EXISTS = 955


class OracleDialect(Dialect):
    name = "oracle"
    types: ClassVar[dict[str, str]] = {
        "key": "VARCHAR2(255) NOT NULL PRIMARY KEY",
        "text": "VARCHAR2(512)",
        "time": "VARCHAR2(32)",
        "int": "NUMBER(19) DEFAULT 0 NOT NULL",
        "doc": "CLOB NOT NULL",
        "long": "CLOB",
        "real": "BINARY_DOUBLE",
        "count": "NUMBER(19)",
        "json": "CLOB",
        "seq": "NUMBER(19) NOT NULL PRIMARY KEY",
    }

    def upsert(self, table: Table) -> str:
        names = table.names
        updates = ", ".join(f"t.{n} = :{n}" for n in table.overwritten)
        return (
            f"MERGE INTO {table.name} t USING (SELECT :id AS id FROM dual) s ON (t.id = s.id) "
            f"WHEN MATCHED THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)}) "
            f"VALUES ({', '.join(':' + n for n in names)})"
        )

    def page(self, select: str) -> str:
        return f"{select} OFFSET :offset ROWS FETCH NEXT :limit ROWS ONLY"

    def lock_rows(self, select: str) -> str:
        return f"{select} FOR UPDATE SKIP LOCKED"

    def lock_row(self, select: str) -> str:
        return f"{select} FOR UPDATE"

    def insert_missing(self, table: Table, values: Mapping[str, str]) -> str:
        return (
            f"MERGE INTO {table.name} t USING (SELECT {values['id']} AS id FROM dual) s "
            f"ON (t.id = s.id) WHEN NOT MATCHED THEN INSERT ({', '.join(values)}) "
            f"VALUES ({', '.join(values.values())})"
        )


DIALECT = OracleDialect()


def schema_objects() -> list[tuple[str, str, str]]:
    """(existence query, object name, CREATE statement) for every table and index."""
    objects: list[tuple[str, str, str]] = []
    for table in (*TABLES.values(), *CLUSTER_TABLES):
        objects.append((TABLE_EXISTS, table.name.upper(), DIALECT.create_table(table)))
        objects.extend(
            (INDEX_EXISTS, index.name.upper(), DIALECT.create_index(table, index))
            for index in table.indexes
        )
    return objects


def retired_indexes() -> list[tuple[str, str]]:
    """(index name, DROP statement) of each index an earlier version made and nothing
    reads any more (Oracle has no DROP INDEX IF EXISTS: the name is looked up first)."""
    return [(name.upper(), f"DROP INDEX {name}") for name in RETIRED_INDEXES]


def maintenance_statements(task: str) -> list[str]:
    """The statements one maintenance task runs, in order."""
    if task == "rebuild_indexes":
        return [f"ALTER INDEX {i.name} REBUILD" for t in TABLES.values() for i in t.indexes]
    if task == "optimize_queries":
        return [CURRENT_SCHEMA]  # then GATHER_STATS per table, by callproc
    if task == "clear_cache":
        return [FLUSH_SHARED_POOL]
    if task == "vacuum":
        return [
            statement
            for t in TABLES.values()
            for statement in (
                f"ALTER TABLE {t.name} ENABLE ROW MOVEMENT",
                f"ALTER TABLE {t.name} SHRINK SPACE CASCADE",
            )
        ]
    raise ValueError(task)


def all_statements() -> list[str]:
    """Every SQL text the Oracle store can send."""
    statements = list(build_statements(DIALECT).values())
    statements += list(cluster_statements(DIALECT).values())
    statements += list(slot_statements(DIALECT, TABLES["jobs"].name).values())
    statements += [TABLE_EXISTS, INDEX_EXISTS, TABLE_COLUMNS]
    statements += [create for _, _, create in schema_objects()]
    statements += [drop for _, drop in retired_indexes()]
    for task in MAINTENANCE_TASKS:
        statements += maintenance_statements(task)
    return statements


def _ora_code(exc: oracledb.Error) -> int | None:
    error = exc.args[0] if exc.args else None
    code = getattr(error, "code", None)
    return code if isinstance(code, int) else None


class OracleStore(SqlStore):
    backend = "oracle"
    dialect = DIALECT
    driver_error = oracledb.Error
    integrity_error = oracledb.IntegrityError

    def __init__(
        self,
        dsn: str,
        user: str,
        password: str,
        *,
        pool_max: int = 8,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.dsn = dsn
        self.user = user
        self._password = password
        self._pool_max = pool_max
        self._connect_timeout = connect_timeout
        self._pool: oracledb.ConnectionPool | None = None

    def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = oracledb.create_pool(
                user=self.user,
                password=self._password,
                dsn=self.dsn,
                min=1,
                max=self._pool_max,
                increment=1,
                tcp_connect_timeout=self._connect_timeout,
            )
            with pool.acquire() as connection:
                self._create_schema(connection)
                with connection.cursor() as cursor:
                    cursor.execute(TABLE_COLUMNS, {"name": TABLES["jobs"].name.upper()})
                    self._migrate_jobs(cursor, [row[0] for row in cursor.fetchall()])
                    self._seed_counters(cursor)
                connection.commit()
        except oracledb.Error as exc:
            raise StoreUnavailable(" ".join(str(exc).split())) from exc
        self._pool = pool

    @staticmethod
    def _create_schema(connection: Any) -> None:
        with connection.cursor() as cursor:
            for exists, name, create in schema_objects():
                cursor.execute(exists, {"name": name})
                if cursor.fetchone()[0]:
                    continue
                try:
                    cursor.execute(create)  # DDL commits by itself
                except oracledb.DatabaseError as exc:
                    if _ora_code(exc) != ALREADY_EXISTS:
                        raise
            for name, drop in retired_indexes():
                cursor.execute(INDEX_EXISTS, {"name": name})
                if cursor.fetchone()[0]:
                    cursor.execute(drop)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close(force=True)
            self._pool = None

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._pool is None:
            raise StoreError("oracle store is not open")
        with self._pool.acquire() as connection:
            yield connection

    def _execute(self, cursor: Any, sql: str, params: Mapping[str, Any] | Sequence[Any]) -> None:
        if ":doc" in sql:  # JSON docs may exceed VARCHAR2's 32 KB bind limit
            cursor.setinputsizes(doc=oracledb.DB_TYPE_CLOB)
        cursor.execute(sql, params, fetch_lobs=False)

    def _execute_many(
        self, cursor: Any, sql: str, rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]
    ) -> None:
        if ":doc" in sql:
            cursor.setinputsizes(doc=oracledb.DB_TYPE_CLOB)
        cursor.executemany(sql, list(rows))

    def _maintain(self, task: str) -> dict[str, Any]:
        steps: dict[str, str] = {}
        with self._transaction(write=False) as cursor:
            for statement in maintenance_statements(task):
                steps[statement] = self._step(partial(cursor.execute, statement))
                if statement == CURRENT_SCHEMA:
                    schema = cursor.fetchone()[0]
                    for table in TABLES.values():
                        params = {"ownname": schema, "tabname": table.name.upper()}
                        gather = partial(cursor.callproc, GATHER_STATS, keyword_parameters=params)
                        steps[f"{GATHER_STATS}({table.name})"] = self._step(gather)
        return {"done": steps}

    @staticmethod
    def _step(run: Callable[[], object]) -> str:
        """Run one maintenance step; a step this account may not take is reported."""
        try:
            run()
        except oracledb.DatabaseError as exc:
            if _ora_code(exc) in NOT_PERMITTED:
                return "skipped: " + " ".join(str(exc).split())
            raise
        return "ok"
