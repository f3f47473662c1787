"""Finished executions counted by (owner, status), kept by SQLite itself, so stats and
page totals never count a long history row by row.

`/api/scheduler/stats` and the executions page's `total` count executions by status
and owner. Counting them in the table, even from an index alone, visits every matching
row: with a million executions that was 80-250 ms per stats request on the shared
2-vCPU machine, growing with the history. So `cw_execution_counts` holds one row per
(owner, terminal status) with how many executions have it, and triggers on
`cw_executions` keep it in step inside the same transaction as each insert, status or
owner change and delete, whichever statement or process makes it (the store's own
writes, an upsert's update, retention's deletes, another program on the file). The
counts are exact: a read gives the count of the rows the same read transaction sees.

Only terminal statuses are kept: a fire passes through queued and running before it
ends, and keeping those would cost four more counter writes per fire on the recorder's
path (measured: +30 us per fire with every status kept). Executions still queued,
running or scheduled are few at any moment, so they are counted live through the
status indexes (`ACTIVE` below) and added in.

A file made before the table existed is counted once, when `create_statements` first
runs on it (inside the schema's transaction, so no write slips between the seed and the
triggers). An execution with no owner is counted under ''.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.model import ACTIVE_STATUSES, TERMINAL_STATUSES

COUNTS = "cw_execution_counts"
TERMINAL = ", ".join(f"'{s}'" for s in sorted(str(s) for s in TERMINAL_STATUSES))
ACTIVE = ", ".join(f"'{s}'" for s in sorted(str(s) for s in ACTIVE_STATUSES))
_CHANGED = "(old.status IS NOT new.status OR old.owner IS NOT new.owner)"


def _bump(row: str, delta: int) -> str:
    return (
        f"INSERT INTO {COUNTS} (owner, status, n) VALUES (COALESCE({row}.owner, ''), "
        f"{row}.status, {delta}) ON CONFLICT (owner, status) DO UPDATE SET n = n + {delta}"
    )


def _trigger(name: str, event: str, when: str, body: str) -> str:
    return (
        f"CREATE TRIGGER IF NOT EXISTS cw_executions_count_{name} {event} ON cw_executions "
        f"WHEN {when} BEGIN {body}; END"
    )


TABLE = (
    f"CREATE TABLE IF NOT EXISTS {COUNTS} (owner TEXT NOT NULL, status TEXT NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (owner, status)) WITHOUT ROWID"
)
TRIGGERS = (
    _trigger("insert", "AFTER INSERT", f"new.status IN ({TERMINAL})", _bump("new", 1)),
    _trigger(
        "leave",
        "AFTER UPDATE OF status, owner",
        f"{_CHANGED} AND old.status IN ({TERMINAL})",
        _bump("old", -1),
    ),
    _trigger(
        "enter",
        "AFTER UPDATE OF status, owner",
        f"{_CHANGED} AND new.status IN ({TERMINAL})",
        _bump("new", 1),
    ),
    _trigger("delete", "AFTER DELETE", f"old.status IN ({TERMINAL})", _bump("old", -1)),
)
TABLE_EXISTS = f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{COUNTS}'"
SEED = (
    f"INSERT INTO {COUNTS} (owner, status, n) "
    "SELECT COALESCE(owner, ''), status, COUNT(*) FROM cw_executions "
    f"WHERE status IN ({TERMINAL}) GROUP BY 1, 2"
)

#: per filters (a subset of owner, status, in that order): (status, count) rows, the
#: kept terminal counts and the live active ones together
STATS = {
    (): (
        f"SELECT status, SUM(n) FROM {COUNTS} GROUP BY status HAVING SUM(n) > 0 "
        "UNION ALL SELECT status, COUNT(*) FROM cw_executions "
        f"WHERE status IN ({ACTIVE}) GROUP BY status"
    ),
    ("owner",): (
        f"SELECT status, n FROM {COUNTS} WHERE owner = :owner AND n > 0 "
        "UNION ALL SELECT status, COUNT(*) FROM cw_executions "
        f"WHERE owner = :owner AND status IN ({ACTIVE}) GROUP BY status"
    ),
}


def create_statements(table_exists: bool) -> Sequence[str]:
    """What makes the counts exist and stay kept: the table, its seed when the table is
    new (counting the executions already there), and the triggers."""
    return (TABLE, *(() if table_exists else (SEED,)), *TRIGGERS)


def all_statements() -> list[str]:
    """Every statement text of this module (the tests prepare each one)."""
    return [TABLE, *TRIGGERS, TABLE_EXISTS, SEED, *STATS.values()]
