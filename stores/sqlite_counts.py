"""Execution counts by (owner, status), kept by SQLite itself, so stats never count rows.

`/api/scheduler/stats` and the executions page's `total` count executions by status
and owner. Counting them in the table (even from an index alone) visits every matching
row: with a million executions that is tens of milliseconds per request, growing with
the history. Instead `cw_execution_counts` holds one row per (owner, status) with how
many executions have it, and triggers on `cw_executions` keep it in step inside the
same transaction as each insert, status or owner change and delete, whichever process
or statement makes it (the store's own writes, an upsert's update, retention's deletes,
another version of cronwell on the same file). So the counts stay exact: a count read
is always the count of the rows the same read transaction would see.

A file made before the table existed is counted once, when `create_statements` first
runs on it (inside the schema's transaction, so no write slips between the seed and the
triggers). An execution with no owner is counted under ''.
"""

from __future__ import annotations

from collections.abc import Sequence

COUNTS = "cw_execution_counts"

_BUMP = (
    f"INSERT INTO {COUNTS} (owner, status, n) VALUES (COALESCE({{row}}.owner, ''), "
    f"{{row}}.status, {{delta}}) ON CONFLICT (owner, status) DO UPDATE SET n = n + {{delta}}"
)


def _bump(row: str, delta: int) -> str:
    return _BUMP.format(row=row, delta=delta)


TABLE = (
    f"CREATE TABLE IF NOT EXISTS {COUNTS} (owner TEXT NOT NULL, status TEXT NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (owner, status)) WITHOUT ROWID"
)
TRIGGERS = (
    (
        "CREATE TRIGGER IF NOT EXISTS cw_executions_count_insert AFTER INSERT ON cw_executions "
        f"BEGIN {_bump('new', 1)}; END"
    ),
    (
        "CREATE TRIGGER IF NOT EXISTS cw_executions_count_update "
        "AFTER UPDATE OF status, owner ON cw_executions "
        "WHEN old.status IS NOT new.status OR old.owner IS NOT new.owner "
        f"BEGIN {_bump('old', -1)}; {_bump('new', 1)}; END"
    ),
    (
        "CREATE TRIGGER IF NOT EXISTS cw_executions_count_delete AFTER DELETE ON cw_executions "
        f"BEGIN {_bump('old', -1)}; END"
    ),
)
TABLE_EXISTS = f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{COUNTS}'"
SEED = (
    f"INSERT INTO {COUNTS} (owner, status, n) "
    "SELECT COALESCE(owner, ''), status, COUNT(*) FROM cw_executions GROUP BY 1, 2"
)

#: statements by the filters they take (a subset of owner, status, in that order)
STATS = {
    (): f"SELECT status, SUM(n) FROM {COUNTS} GROUP BY status HAVING SUM(n) > 0",
    ("owner",): f"SELECT status, n FROM {COUNTS} WHERE owner = :owner AND n > 0",
}
COUNT = {
    (): f"SELECT COALESCE(SUM(n), 0) FROM {COUNTS}",
    ("owner",): f"SELECT COALESCE(SUM(n), 0) FROM {COUNTS} WHERE owner = :owner",
    ("status",): f"SELECT COALESCE(SUM(n), 0) FROM {COUNTS} WHERE status = :status",
    ("owner", "status"): (
        f"SELECT COALESCE(SUM(n), 0) FROM {COUNTS} WHERE owner = :owner AND status = :status"
    ),
}


def create_statements(table_exists: bool) -> Sequence[str]:
    """What makes the counts exist and stay kept: the table, its seed when the table is
    new (counting the executions already there), and the triggers."""
    return (TABLE, *(() if table_exists else (SEED,)), *TRIGGERS)


def all_statements() -> list[str]:
    """Every statement text of this module (the tests run each through EXPLAIN)."""
    return [TABLE, *TRIGGERS, TABLE_EXISTS, SEED, *STATS.values(), *COUNT.values()]
