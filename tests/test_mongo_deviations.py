"""Where secantusdb differs from MongoDB's documented behaviour in a way cronwell meets.

Each deviation is a test of the documented behaviour on a plain secantusdb server,
marked `secantus_deviation` and xfail: strict where it must fail there (so a release
that fixes it is noticed), not strict where the loss depends on timing (the journal
may reach the disk before a kill), and the same scenario passes on the servers the
suite shares, which make up for it as the README says.

Expired transactions. MongoDB's manual (Transactions, Production Considerations,
"Runtime Limit"): a transaction that runs longer than transactionLifetimeLimitSeconds is
considered expired and aborted by a periodic cleanup process; a write outside a
transaction that meets a document an in-progress transaction has written waits until
that transaction ends. So when a client dies in the middle of a transaction (cronwell
under kill -9), its writes are undone within about that limit and other writers go on.
secantusdb 0.7.0b3 checks for expired transactions only when a transaction command
arrives, so a plain write to such a document waits for ever.

Journaled commits. MongoDB's manual (Write Concern, "j Option"): with j: true the
server acknowledges a write once it is in the on-disk journal, so it survives the
server's crash. secantusdb 0.7.0b3 honours that for a plain write, but commits a
transaction without syncing the journal (unless the server runs with sync_on_commit),
so an acknowledged transaction can be gone after kill -9 of the server.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pymongo
import pytest

from tests.mongo_server import SECANTUS_PLATFORM, MongoTarget, SecantusProcess

pytestmark = pytest.mark.mongo_real

#: a client that starts a transaction, writes one document in it, says so, and hangs
ORPHAN = """
import signal, sys, pymongo
client = pymongo.MongoClient(sys.argv[1])
coll = client[sys.argv[2]]["docs"]
session = client.start_session()
session.start_transaction()
coll.update_one({"_id": 1}, {"$set": {"by": "orphan"}}, session=session)
print("written", flush=True)
signal.pause()  # hangs until the test kills it
"""


def _lifetime(target: MongoTarget) -> float:
    """The server's transactionLifetimeLimitSeconds (ours: what we started it with)."""
    if target.process is not None:
        return target.process.transaction_lifetime
    answer = target.client.admin.command({"getParameter": 1, "transactionLifetimeLimitSeconds": 1})
    return float(answer["transactionLifetimeLimitSeconds"])


def write_after_a_client_died_mid_transaction(target: MongoTarget, db: str) -> float:
    """Seconds a plain update took to get through a dead client's open transaction;
    raises pymongo's NetworkTimeout when it waited past twice the lifetime + 5 s."""
    lifetime = _lifetime(target)
    target.client[db]["docs"].insert_one({"_id": 1, "by": "setup"})
    orphan = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, target.uri, db], stdout=subprocess.PIPE, text=True
    )
    try:
        assert orphan.stdout is not None and orphan.stdout.readline().strip() == "written"
    finally:
        orphan.kill()  # as kill -9: no commit, no abort, no endSessions
        orphan.wait(10)
    limit_ms = int((2 * lifetime + 5) * 1000)
    with pymongo.MongoClient(target.uri, socketTimeoutMS=limit_ms, retryWrites=False) as client:
        started = time.monotonic()
        client[db]["docs"].update_one({"_id": 1}, {"$set": {"by": "survivor"}})
        took = time.monotonic() - started
        assert client[db]["docs"].find_one({"_id": 1}) == {"_id": 1, "by": "survivor"}
    return took


def test_a_dead_clients_transaction_expires_on_the_shared_server(mongo: MongoTarget) -> None:
    with mongo.database() as db:
        took = write_after_a_client_died_mid_transaction(mongo, db)
    assert took < 2 * _lifetime(mongo) + 5


@pytest.mark.secantus_deviation
@pytest.mark.xfail(
    strict=True,
    raises=pymongo.errors.NetworkTimeout,
    reason="secantusdb 0.7.0b3 has no periodic cleanup of expired transactions: a plain "
    "write to a document a dead client's transaction wrote waits for ever",
)
@pytest.mark.skipif(not SECANTUS_PLATFORM, reason="secantusdb has no wheel for this platform")
def test_a_dead_clients_transaction_expires_on_plain_secantusdb(tmp_path: Path) -> None:
    server = SecantusProcess(tmp_path / "data", transaction_lifetime=1.0, cleanup=False).start()
    target = MongoTarget(server.uri, "plain secantusdb", server)
    try:
        write_after_a_client_died_mid_transaction(target, "cronwell_test_deviation")
    finally:
        target.close()
        server.kill()  # its storage still has the dead client's transaction open


#: a plain write, then transactions as cronwell's claims come (one after another), all
#: with j: true; the last is acknowledged right before the server is killed
TRANSACTION = """
import sys, pymongo
client = pymongo.MongoClient(sys.argv[1], journal=True)
coll = client[sys.argv[2]]["docs"]
coll.insert_one({"_id": "plain"})
with client.start_session() as session:
    for i in range(200):
        session.with_transaction(lambda s: coll.insert_one({"_id": f"txn{i:03d}"}, session=s))
print("acknowledged", flush=True)
sys.stdin.read()
"""
JOURNALED = ["plain", *(f"txn{i:03d}" for i in range(200))]


def journaled_writes_after_kill_9(server: SecantusProcess) -> list[str]:
    """Ids of a plain and a transaction write acknowledged with j: true that are still
    there after the server is killed right after the acknowledgement and restarted."""
    writer = subprocess.Popen(
        [sys.executable, "-c", TRANSACTION, server.uri, "cronwell_test_durable"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "acknowledged"
        server.kill()  # within a millisecond or so of the last acknowledgement
    finally:
        writer.kill()
        writer.wait(10)
    server.start()
    with pymongo.MongoClient(server.uri) as client:
        return sorted(d["_id"] for d in client["cronwell_test_durable"]["docs"].find())


def test_journaled_writes_survive_kill_9_with_sync_on_commit(tmp_path: Path) -> None:
    server = SecantusProcess(tmp_path / "data", sync_on_commit=True).start()
    try:
        assert journaled_writes_after_kill_9(server) == JOURNALED
    finally:
        server.kill()


@pytest.mark.secantus_deviation
# not strict: whether a write acknowledged before its sync is lost depends on whether
# the server's journal reached the disk before the kill, which a quiet machine sometimes
# allows (a fresh-clone CI run on 2026-12-02 saw it pass)
@pytest.mark.xfail(
    strict=False,
    reason="secantusdb 0.7.0b3 acknowledges a transaction with j: true before its journal "
    "is synced: kill -9 of the server can lose it",
)
@pytest.mark.skipif(not SECANTUS_PLATFORM, reason="secantusdb has no wheel for this platform")
def test_journaled_writes_survive_kill_9_on_plain_secantusdb(tmp_path: Path) -> None:
    server = SecantusProcess(tmp_path / "data").start()
    try:
        assert journaled_writes_after_kill_9(server) == JOURNALED
    finally:
        server.kill()
