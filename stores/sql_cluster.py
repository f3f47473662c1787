"""The SQL backends' share of several nodes on one store: the job change feed, node
heartbeats and cancel requests (the `SchedulerStore` methods under "several nodes").

Tables, beside the records' ones in stores/sql.py:
- `cw_counters`: one row per counter; `job_changes` hands out the feed's seqs. Taking
  the next value is an UPDATE of that row inside the job write's own transaction, so
  the row lock orders writers and every seq commits in order (no gaps on SQL).
- `cw_job_changes`: (seq, job_id), appended by every job write.
- `cw_nodes`: one row per node, its record as JSON beside its heartbeat time.
- `cw_cancels`: (execution id, node) for cancels asked of another node.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from engine.interfaces import JobChange
from engine.model import Node
from stores.codec import dumps, loads, revive, time_text
from stores.sql_tables import Column, Dialect, Index, Table

JOB_CHANGES_COUNTER = "job_changes"

COUNTERS = Table(
    "cw_counters",
    object,  # never decoded: read by its own statements
    (Column("id", "key"), Column("seq", "int")),
    (),
)
JOB_CHANGES = Table(
    "cw_job_changes",
    object,
    (Column("seq", "seq"), Column("job_id", "text")),
    (),
)
NODES = Table(
    "cw_nodes",
    Node,
    (Column("id", "key"), Column("last_heartbeat", "time"), Column("doc", "doc")),
    (Index("cw_nodes_heartbeat", ("last_heartbeat",)),),
)
CANCELS = Table(
    "cw_cancels",
    object,
    (Column("id", "key"), Column("node", "text")),
    (Index("cw_cancels_node", ("node",)),),
)
CLUSTER_TABLES = (COUNTERS, JOB_CHANGES, NODES, CANCELS)


def cluster_statements(dialect: Dialect) -> dict[str, str]:
    """The statements of the methods below, by name (merged into the store's own)."""
    return {
        "seed_counter": dialect.insert_missing(COUNTERS, {"id": ":id", "seq": "0"}),
        "bump_counter": "UPDATE cw_counters SET seq = seq + 1 WHERE id = :id",
        "read_counter": "SELECT seq FROM cw_counters WHERE id = :id",
        "insert_job_change": "INSERT INTO cw_job_changes (seq, job_id) VALUES (:seq, :job_id)",
        "job_changes": dialect.page(
            "SELECT seq, job_id FROM cw_job_changes WHERE seq > :after ORDER BY seq"
        ),
        "prune_job_changes": "DELETE FROM cw_job_changes WHERE seq <= :through",
        "upsert_node": dialect.upsert(NODES),
        "list_nodes": "SELECT doc FROM cw_nodes",
        "delete_node": "DELETE FROM cw_nodes WHERE id = :id",
        "count_active": (
            "SELECT job_id, COUNT(*) FROM cw_executions "
            "WHERE status IN ('queued', 'running') GROUP BY job_id"
        ),
        "queued_executions": dialect.lock_rows(
            "SELECT doc FROM cw_executions WHERE status = 'queued'"
        ),
        "queued_execution": dialect.lock_row(
            "SELECT doc FROM cw_executions WHERE id = :id AND status = 'queued'"
        ),
        "upsert_cancel": dialect.upsert(CANCELS),
        "cancels_of": "SELECT id FROM cw_cancels WHERE node = :node",
        "delete_cancel": "DELETE FROM cw_cancels WHERE id = :id AND node = :node",
    }


class SqlCluster:
    """Mixin for SqlStore, which provides `_transaction`, `_execute` and `_sql`."""

    _sql: dict[str, str]

    if TYPE_CHECKING:

        def _transaction(self, write: bool = True) -> AbstractContextManager[Any]: ...
        def _execute(self, cursor: Any, sql: str, params: Mapping[str, Any]) -> None: ...

    def _seed_counters(self, cursor: Any) -> None:
        """Make the counter rows exist (schema creation calls this once per open)."""
        self._execute(cursor, self._sql["seed_counter"], {"id": JOB_CHANGES_COUNTER})

    def _append_change(self, cursor: Any, job_id: str) -> None:
        """Inside a job write's transaction: take the next seq and record the change."""
        self._execute(cursor, self._sql["bump_counter"], {"id": JOB_CHANGES_COUNTER})
        self._execute(cursor, self._sql["read_counter"], {"id": JOB_CHANGES_COUNTER})
        seq = int(cursor.fetchone()[0])
        self._execute(cursor, self._sql["insert_job_change"], {"seq": seq, "job_id": job_id})

    def job_changes(self, after: int, limit: int = 1000) -> list[JobChange]:
        with self._transaction(write=False) as cursor:
            params = {"after": after, "limit": limit, "offset": 0}
            self._execute(cursor, self._sql["job_changes"], params)
            return [JobChange(int(seq), job_id) for seq, job_id in cursor.fetchall()]

    def last_job_change(self) -> int:
        with self._transaction(write=False) as cursor:
            self._execute(cursor, self._sql["read_counter"], {"id": JOB_CHANGES_COUNTER})
            row = cursor.fetchone()
            return int(row[0]) if row else 0

    def prune_job_changes(self, through: int) -> int:
        with self._transaction() as cursor:
            self._execute(cursor, self._sql["prune_job_changes"], {"through": through})
            return int(cursor.rowcount)

    def count_active(self) -> dict[str, int]:
        with self._transaction(write=False) as cursor:
            self._execute(cursor, self._sql["count_active"], {})
            return {str(job_id): int(count) for job_id, count in cursor.fetchall()}

    def heartbeat(self, node: Node) -> None:
        row = {
            "id": node.node_id,
            "last_heartbeat": time_text(node.last_heartbeat),
            "doc": dumps(node.to_record()),
        }
        with self._transaction() as cursor:
            self._execute(cursor, self._sql["upsert_node"], row)

    def list_nodes(self) -> list[Node]:
        with self._transaction(write=False) as cursor:
            self._execute(cursor, self._sql["list_nodes"], {})
            nodes = [revive(Node, loads(doc)) for (doc,) in cursor.fetchall()]
        return sorted(nodes, key=lambda n: (n.started_at, n.node_id))

    def remove_node(self, node_id: str) -> None:
        with self._transaction() as cursor:
            self._execute(cursor, self._sql["delete_node"], {"id": node_id})

    def request_cancel(self, execution_id: str, node_id: str) -> None:
        with self._transaction() as cursor:
            self._execute(cursor, self._sql["upsert_cancel"], {"id": execution_id, "node": node_id})

    def take_cancel_requests(self, node_id: str) -> list[str]:
        taken: list[str] = []
        with self._transaction() as cursor:
            self._execute(cursor, self._sql["cancels_of"], {"node": node_id})
            for (execution_id,) in cursor.fetchall():
                self._execute(
                    cursor, self._sql["delete_cancel"], {"id": execution_id, "node": node_id}
                )
                if cursor.rowcount:  # another reader of the same node may have taken it
                    taken.append(execution_id)
        return taken
