"""The MongoDB backend's share of several nodes on one store: the job change feed,
node heartbeats and cancel requests (the `SchedulerStore` methods under "several nodes").

Collections, beside the scheduler seed's:
- `cronwell_counters`: `{_id: "job_changes", value}`; `$inc` hands out the feed's seqs.
- `scheduler_job_changes`: `{_id: seq, job_id}`. A job write appends its change after
  the job write itself (a standalone server has no multi-document transactions), so a
  reader that sees a change finds the new state; a writer that took a seq but has not
  inserted it yet leaves a short gap, which readers wait out (engine/cluster.py).
- `scheduler_nodes`: one document per node; `scheduler_cancels`: `{_id: execution, node}`.

Claims without transactions (a standalone server, as compose's `mongo:7`): a claim and
its executions are two writes, and a node killed between them used to leave a fire
claimed with no record at all (seen: 15 of 600 one-off fires in the three-node kill
test). So each claim's update also pushes its execution documents onto the job's
`pending_claims` list: one single-document update, atomic on any server. The node then
inserts them (insert-if-absent) and pulls them off the list. A node taking over a dead
node's fires (`take_over`, at start or in a sweep) first writes whatever that node left
pending, then takes it over like any queued fire. An execution that someone else had
already written (this node was judged dead while it stalled, and its fires were taken
over) is reported as a lost claim, so this node does not run it too.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from engine.interfaces import JobChange
from engine.model import Execution, Node, Status
from stores.codec import plain, revive

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from contextlib import AbstractContextManager

    from engine.interfaces import FireClaim

COUNTERS = "cronwell_counters"
JOB_CHANGES = "scheduler_job_changes"
NODES = "scheduler_nodes"
CANCELS = "scheduler_cancels"
EXECUTIONS = "scheduler_executions"  # the seed's collection (stores/mongo.py)
JOBS = "scheduler_jobs"
#: field of a job's document holding the executions of claims not yet written
PENDING = "pending_claims"


class MongoCluster:
    """Mixin for MongoStore, which provides `_db` and `_driver`."""

    _db: Any

    if TYPE_CHECKING:

        def _driver(self, duplicate: Exception | None = None) -> AbstractContextManager[None]: ...

    def _ensure_cluster_indexes(self) -> None:
        """Indexes, and the counter document: made here, once, so that job writes only
        ever `$inc` it (two first upserts racing could both try to insert it)."""
        self._db[CANCELS].create_index([("node", ASCENDING)], name="node")
        # a sweep looks for a dead node's pending claims: only jobs that hold some
        self._db[JOBS].create_index(
            [(f"{PENDING}.node", ASCENDING)], name="pending_node", sparse=True
        )
        with contextlib.suppress(DuplicateKeyError):  # another node made it meanwhile
            self._db[COUNTERS].update_one(
                {"_id": "job_changes"}, {"$setOnInsert": {"value": 0}}, upsert=True
            )

    def _changed(self, job_id: str) -> None:
        """Append the change of one job write (call it after the write succeeded)."""
        with self._driver():
            counter = self._db[COUNTERS].find_one_and_update(
                {"_id": "job_changes"},
                {"$inc": {"value": 1}},
                return_document=ReturnDocument.AFTER,
            )
            self._db[JOB_CHANGES].insert_one({"_id": int(counter["value"]), "job_id": job_id})

    def job_changes(self, after: int, limit: int = 1000) -> list[JobChange]:
        with self._driver():
            found: Iterator[dict[str, Any]] = (
                self._db[JOB_CHANGES].find({"_id": {"$gt": after}}).sort("_id", 1).limit(limit)
            )
            return [JobChange(int(d["_id"]), str(d["job_id"])) for d in found]

    def last_job_change(self) -> int:
        with self._driver():
            counter = self._db[COUNTERS].find_one({"_id": "job_changes"})
        return int(counter["value"]) if counter else 0

    def prune_job_changes(self, through: int) -> int:
        with self._driver():
            result = self._db[JOB_CHANGES].delete_many({"_id": {"$lte": through}})
        return int(result.deleted_count)

    def heartbeat(self, node: Node) -> None:
        document = plain(node.to_record())
        document["_id"] = node.node_id
        with self._driver():
            self._db[NODES].replace_one({"_id": node.node_id}, document, upsert=True)

    def list_nodes(self) -> list[Node]:
        with self._driver():
            documents = list(self._db[NODES].find())
        nodes = []
        for document in documents:
            document.pop("_id", None)
            nodes.append(revive(Node, document))
        return sorted(nodes, key=lambda n: (n.started_at, n.node_id))

    def remove_node(self, node_id: str) -> None:
        with self._driver():
            self._db[NODES].delete_one({"_id": node_id})

    def count_active(self) -> dict[str, int]:
        pipeline = [
            {"$match": {"status": {"$in": [str(Status.QUEUED), str(Status.RUNNING)]}}},
            {"$group": {"_id": "$job_id", "count": {"$sum": 1}}},
        ]
        with self._driver():
            groups = list(self._db[EXECUTIONS].aggregate(pipeline))
        return {str(g["_id"]): int(g["count"]) for g in groups}

    def _record_claimed(
        self, claims: Sequence[FireClaim], won: list[bool], pending: list[list[dict[str, Any]]]
    ) -> list[bool]:
        """Write the won claims' executions, each only if absent, then pull them off
        their jobs' pending lists; a claim whose executions someone else wrote first
        counts as lost (see the module docstring)."""
        writes: list[UpdateOne] = []
        owner: list[int] = []
        for index, ok in enumerate(won):
            if ok:
                for document in pending[index]:
                    values = {k: v for k, v in document.items() if k != "_id"}
                    writes.append(
                        UpdateOne({"_id": document["_id"]}, {"$setOnInsert": values}, upsert=True)
                    )
                    owner.append(index)
        if not writes:
            return won
        result = self._db[EXECUTIONS].bulk_write(writes, ordered=True)
        inserted = set(result.upserted_ids)
        outcome = list(won)
        for position, index in enumerate(owner):
            if position not in inserted:
                outcome[index] = False
        pulls = [
            UpdateOne(
                {"_id": claims[index].job_id},
                {"$pull": {PENDING: {"_id": {"$in": [d["_id"] for d in pending[index]]}}}},
            )
            for index, ok in enumerate(won)
            if ok and pending[index]
        ]
        self._db[JOBS].bulk_write(pulls, ordered=False)
        return outcome

    def _write_pending(self, node: str | None) -> int:
        """Write the executions `node` claimed and left pending (it died between its two
        writes), each only if absent, and pull them off the jobs; how many were new."""
        written = 0
        jobs = self._db[JOBS]
        for job in list(jobs.find({PENDING: {"$elemMatch": {"node": node}}}, {PENDING: 1})):
            left = [d for d in job.get(PENDING, []) if d.get("node") == node]
            for document in left:
                values = {k: v for k, v in document.items() if k != "_id"}
                result = self._db[EXECUTIONS].update_one(
                    {"_id": document["_id"]}, {"$setOnInsert": values}, upsert=True
                )
                written += result.upserted_id is not None
            ids = [d["_id"] for d in left]
            jobs.update_one({"_id": job["_id"]}, {"$pull": {PENDING: {"_id": {"$in": ids}}}})
        return written

    def take_over(self, from_node: str | None, to_node: str | None, note: str) -> list[Execution]:
        executions = self._db[EXECUTIONS]
        with self._driver():
            self._write_pending(from_node)
        query = {"status": str(Status.QUEUED), "node": from_node}
        taken: list[Execution] = []
        with self._driver():
            for found in list(executions.find(query, {"_id": 1, "output": 1})):
                # conditional on the output read, so a concurrent taker's note is seen
                condition = {**query, "_id": found["_id"], "output": found.get("output", "")}
                document = executions.find_one_and_update(
                    condition,
                    {"$set": {"node": to_node, "output": found.get("output", "") + note}},
                    return_document=ReturnDocument.AFTER,
                )
                if document is not None:  # another sweeper may have taken it first
                    document["id"] = document.pop("_id")
                    taken.append(revive(Execution, document))
        return sorted(taken, key=lambda e: (e.created_at, e.id))

    def request_cancel(self, execution_id: str, node_id: str) -> None:
        with self._driver():
            self._db[CANCELS].replace_one(
                {"_id": execution_id}, {"_id": execution_id, "node": node_id}, upsert=True
            )

    def take_cancel_requests(self, node_id: str) -> list[str]:
        with self._driver():
            asked = [d["_id"] for d in self._db[CANCELS].find({"node": node_id})]
            # find_one_and_delete: two readers of one node never both take a request
            return [str(e) for e in asked if self._db[CANCELS].find_one_and_delete({"_id": e})]
