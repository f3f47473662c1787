"""Claims on a MongoDB server without transactions: a fire's record survives its node
dying between the claim and the record (stores/mongo_cluster.py, PENDING).

On a standalone server (compose's `mongo:7`) a claim and its executions are two writes.
The three-node kill test lost 15 of 600 one-off fires' records there: claimed, never
recorded, so never taken over. Each case here stops a claim where a `kill -9` would, on
the session's standalone secantusdb, and looks at what another node then finds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from engine.interfaces import FireClaim
from engine.model import Execution, Status
from stores.mongo import MongoStore, _claim_update, to_document
from stores.mongo_cluster import JOBS, PENDING
from tests.mongo_server import MongoTarget
from tests.test_store_contract import T0, make_job

pytestmark = pytest.mark.mongo_real
NOTE = "[cronwell] queued again: claimed before node n2 stopped, never started\n"


@pytest.fixture
def stores(mongo_standalone: MongoTarget) -> Iterator[tuple[MongoStore, MongoStore]]:
    """Two nodes' stores on one standalone database: the one that dies, the sweeper."""
    with mongo_standalone.database() as name:
        dying, sweeper = (
            MongoStore(mongo_standalone.uri, name),
            MongoStore(mongo_standalone.uri, name),
        )
        dying.open()
        sweeper.open()
        try:
            assert not dying._transactions, "the standalone server has no transactions"
            yield dying, sweeper
        finally:
            dying.close()
            sweeper.close()


def claimed_only(store: MongoStore, job_id: str) -> tuple[FireClaim, list[dict[str, object]]]:
    """The claim's first write alone, as a node killed right after it leaves it."""
    execution = Execution(
        id=f"{job_id}-run", job_id=job_id, status=Status.QUEUED, created_at=T0, node="n2"
    )
    claim = FireClaim(job_id, T0, T0 + timedelta(minutes=5), [execution])
    documents = [to_document(execution)]
    store._db[JOBS].bulk_write([_claim_update(claim, "token", documents)])
    return claim, documents


def test_a_claim_whose_record_never_came_is_recorded_and_taken_over(
    stores: tuple[MongoStore, MongoStore],
) -> None:
    dying, sweeper = stores
    dying.add_job(make_job("j", next_run_time=T0))
    claimed_only(dying, "j")
    assert dying.list_executions() == []  # the old behaviour's loss: claimed, no record
    assert sweeper.get_job("j").next_run_time == T0 + timedelta(minutes=5)

    (taken,) = sweeper.take_over("n2", "n0", NOTE)
    assert (taken.id, taken.status, taken.node, taken.output) == (
        "j-run",
        Status.QUEUED,
        "n0",
        NOTE,
    )
    assert sweeper._db[JOBS].find_one({"_id": "j"})[PENDING] == []
    assert sweeper.take_over("n2", "n0", NOTE) == []  # once


def test_a_stalled_node_that_wakes_after_the_take_over_does_not_run_it_too(
    stores: tuple[MongoStore, MongoStore],
) -> None:
    dying, sweeper = stores
    dying.add_job(make_job("j", next_run_time=T0))
    claim, documents = claimed_only(dying, "j")
    sweeper.take_over("n2", "n0", NOTE)
    # the stalled node goes on with its second write: the record is the sweeper's now
    assert dying._record_claimed([claim], [True], [documents]) == [False]
    (execution,) = sweeper.list_executions()
    assert (execution.node, execution.output) == ("n0", NOTE)


def test_a_claim_that_completes_leaves_nothing_pending(
    stores: tuple[MongoStore, MongoStore],
) -> None:
    dying, sweeper = stores
    for job_id in ("a", "b"):
        dying.add_job(make_job(job_id, next_run_time=T0))
    runs = {
        j: Execution(id=f"{j}-run", job_id=j, status=Status.QUEUED, created_at=T0, node="n2")
        for j in ("a", "b")
    }
    claims = [FireClaim(j, T0, T0 + timedelta(minutes=5), [runs[j]]) for j in ("a", "b")]
    assert dying.claim_fires(claims) == [True, True]
    assert sweeper.claim_fires(claims) == [False, False]  # the fires are taken
    assert {e.id for e in sweeper.list_executions()} == {"a-run", "b-run"}
    for job_id in ("a", "b"):
        assert sweeper._db[JOBS].find_one({"_id": job_id})[PENDING] == []
