"""The store contract's "several nodes" part, on every backend: the job change feed,
node heartbeats and cancel requests (engine/interfaces.py, SchedulerStore).

The `store` fixture is the contract suite's own, parametrised over every backend;
counts are taken relative to where a (possibly shared, real) store already stands.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.errors import JobExists, JobNotFound
from engine.model import Node
from stores.base import Store
from tests.mongo_server import MongoTarget
from tests.test_store_contract import T0, make_job, store

__all__ = ["store"]


def test_every_job_write_appends_one_change_in_order(store: Store) -> None:
    start = store.last_job_change()
    job = make_job("a")
    store.add_job(job)
    job.name = "renamed"
    store.update_job(job)
    store.add_job(make_job("b"))
    store.remove_job("a")
    changes = store.job_changes(start)
    assert [c.job_id for c in changes] == ["a", "a", "b", "a"]
    seqs = [c.seq for c in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4 and seqs[0] > start
    assert store.last_job_change() == seqs[-1]
    assert store.job_changes(seqs[1], limit=1) == [changes[2]]


def test_a_refused_job_write_appends_no_change(store: Store) -> None:
    store.add_job(make_job("a"))
    start = store.last_job_change()
    with pytest.raises(JobExists):
        store.add_job(make_job("a"))
    with pytest.raises(JobNotFound):
        store.update_job(make_job("missing"))
    with pytest.raises(JobNotFound):
        store.remove_job("missing")
    assert store.job_changes(start) == [] and store.last_job_change() == start


def test_claims_and_runs_append_no_change(store: Store) -> None:
    job = make_job("a", next_run_time=T0)
    store.add_job(job)
    start = store.last_job_change()
    assert store.claim_fire("a", T0, T0 + timedelta(minutes=5), [])
    assert store.job_changes(start) == []


def test_pruning_drops_the_changes_up_to_a_seq(store: Store) -> None:
    start = store.last_job_change()
    for name in ("a", "b", "c"):
        store.add_job(make_job(name))
    changes = store.job_changes(start)
    assert store.prune_job_changes(changes[1].seq) >= 2
    assert store.job_changes(start) == [changes[2]]
    assert store.last_job_change() == changes[2].seq  # the counter never goes back


def test_heartbeats_register_renew_and_list_nodes(store: Store) -> None:
    later = Node("b:2", started_at=T0 + timedelta(seconds=5), last_heartbeat=T0, running=0)
    store.heartbeat(Node("a:1", started_at=T0, last_heartbeat=T0, lease_seconds=10))
    store.heartbeat(later)
    store.heartbeat(Node("a:1", started_at=T0, last_heartbeat=T0 + timedelta(seconds=3), running=4))
    nodes = store.list_nodes()
    assert [n.node_id for n in nodes] == ["a:1", "b:2"]
    assert nodes[0].last_heartbeat == T0 + timedelta(seconds=3) and nodes[0].running == 4
    assert nodes[0].alive(T0 + timedelta(seconds=13))
    assert not nodes[0].alive(T0 + timedelta(seconds=13, microseconds=1))
    store.remove_node("a:1")
    store.remove_node("never-registered")
    assert [n.node_id for n in store.list_nodes()] == ["b:2"]


def test_cancel_requests_are_handed_out_once_to_their_node(store: Store) -> None:
    store.request_cancel("e1", "a:1")
    store.request_cancel("e1", "a:1")  # idempotent
    store.request_cancel("e2", "b:2")
    assert store.take_cancel_requests("a:1") == ["e1"]
    assert store.take_cancel_requests("a:1") == []
    assert store.take_cancel_requests("b:2") == ["e2"]


#: where the cross-process cases run: ("sqlite", file) or ("mongo", URI, database),
#: plain tuples, so a spawned process can be handed one
StoreSpec = tuple[str, ...]


def _open(spec: StoreSpec) -> Store:
    if spec[0] == "sqlite":
        from stores.sqlite import SqliteStore

        sqlite = SqliteStore(Path(spec[1]))
        sqlite.open()
        return sqlite
    from stores.mongo import MongoStore

    mongo = MongoStore(spec[1], spec[2])
    mongo.open()
    return mongo


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("mongo", marks=pytest.mark.mongo_real),
        pytest.param("mongo_standalone", marks=pytest.mark.mongo_real),
    ]
)
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreSpec]:
    """One store for several processes: a SQLite file, or a fresh database on the
    session's real Mongo server of that name (a replica set, or a standalone one)."""
    if request.param == "sqlite":
        yield ("sqlite", str(tmp_path / "shared.db"))
        return
    target: MongoTarget = request.getfixturevalue(request.param)
    with target.database() as name:
        yield ("mongo", target.uri, name)


def _add_jobs(spec: StoreSpec, prefix: str, count: int) -> None:
    other = _open(spec)
    for n in range(count):
        other.add_job(make_job(f"{prefix}{n}"))
    other.close()


def test_writers_in_several_processes_get_unique_gapless_seqs(shared: StoreSpec) -> None:
    """Two processes writing jobs into one store: every change has its own seq, and once
    both are done the seqs have no gaps (on SQLite none ever shows, the counter and the
    change being one transaction; on MongoDB a gap lasts while a writer is between its
    two writes, engine/cluster.py)."""
    first = _open(shared)
    start = first.last_job_change()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_jobs, args=(shared, prefix, 150)) for prefix in "xy"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    changes = first.job_changes(start, limit=1000)
    assert [c.seq for c in changes] == list(range(start + 1, start + 301))
    assert sorted(c.job_id for c in changes) == sorted(f"{p}{n}" for p in "xy" for n in range(150))
    assert first.last_job_change() == start + 300
    first.close()
    if shared[0] == "sqlite":
        with closing(sqlite3.connect(shared[1])) as db:
            feed = db.execute("SELECT seq FROM cw_counters WHERE id = 'job_changes'")
            assert feed.fetchall() == [(300,)]


def test_abandon_running_keeps_or_picks_executions_by_node(store: Store) -> None:
    from engine.model import Execution, Status

    store.add_job(make_job("j"))
    for execution_id, node in (("a1", "a:1"), ("b1", "b:2"), ("n1", None)):
        store.add_execution(
            Execution(id=execution_id, job_id="j", status=Status.RUNNING, created_at=T0, node=node)
        )
    later = T0 + timedelta(seconds=30)
    assert [e.id for e in store.abandon_running(later, "b is gone", only_nodes=["b:2"])] == ["b1"]
    assert store.get_execution("b1").status is Status.ABANDONED
    assert store.get_execution("b1").error == "b is gone"
    assert [e.id for e in store.abandon_running(later, "restart", keep_nodes=["a:1"])] == ["n1"]
    assert store.get_execution("n1").status is Status.ABANDONED
    assert store.get_execution("a1").status is Status.RUNNING
    assert store.get_execution("a1").node == "a:1"


def test_take_over_reassigns_only_the_queued_executions_of_one_node(store: Store) -> None:
    from engine.model import Execution, Status

    store.add_job(make_job("j"))
    for execution_id, node, status in (
        ("q-dead", "dead:1", Status.QUEUED),
        ("r-dead", "dead:1", Status.RUNNING),
        ("q-live", "live:2", Status.QUEUED),
        ("q-none", None, Status.QUEUED),
    ):
        store.add_execution(
            Execution(id=execution_id, job_id="j", status=status, created_at=T0, node=node)
        )
    taken = store.take_over("dead:1", "me:3", "[note]\n")
    assert [(e.id, e.node, e.status) for e in taken] == [("q-dead", "me:3", Status.QUEUED)]
    assert store.get_execution("q-dead").node == "me:3"
    assert store.get_execution("r-dead").node == "dead:1"
    assert store.take_over("dead:1", "other:4", "[note]\n") == []  # taken once
    assert [e.id for e in store.take_over(None, "me:3", "[note]\n")] == ["q-none"]
    assert store.get_execution("q-live").node == "live:2"


def test_a_conditional_start_wins_only_a_queued_execution_still_its_nodes(store: Store) -> None:
    """start_claimed against take_over: of the two, whichever comes first wins."""
    import copy

    from engine.model import Execution, Status

    store.add_job(make_job("j"))
    for execution_id in ("mine", "taken", "ended"):
        store.add_execution(
            Execution(id=execution_id, job_id="j", status=Status.QUEUED, created_at=T0, node="a:1")
        )
    ended = store.get_execution("ended")
    ended.status, ended.completed_at = Status.MISSED, T0
    store.update_execution(ended)
    started = {}
    for execution_id in ("mine", "taken", "ended", "never-added"):
        running = Execution(
            id=execution_id, job_id="j", status=Status.RUNNING, created_at=T0, node="a:1"
        )
        running.started_at = T0 + timedelta(seconds=1)
        started[execution_id] = running
    assert store.start_claimed(copy.copy(started["mine"]))
    assert store.get_execution("mine").status is Status.RUNNING
    assert store.get_execution("mine").started_at == T0 + timedelta(seconds=1)
    taken = store.take_over("a:1", "b:2", "[note]\n")
    assert [e.id for e in taken] == ["taken"]  # the started one is no longer queued
    assert not store.start_claimed(started["taken"])  # b holds it now
    assert store.get_execution("taken").status is Status.QUEUED
    assert store.get_execution("taken").node == "b:2"
    assert not store.start_claimed(started["ended"])
    assert store.get_execution("ended").status is Status.MISSED
    assert not store.start_claimed(started["never-added"])
    assert not store.start_claimed(started["mine"])  # running already: once


def test_count_active_counts_queued_and_running_per_job_on_every_node(store: Store) -> None:
    from engine.model import Execution, Status

    for job_id in ("a", "b"):
        store.add_job(make_job(job_id))
    for execution_id, job_id, status, node in (
        ("1", "a", Status.QUEUED, "n1"),
        ("2", "a", Status.RUNNING, "n2"),
        ("3", "a", Status.COMPLETED, "n1"),
        ("4", "b", Status.SCHEDULED, "n1"),
        ("5", "b", Status.RUNNING, None),
    ):
        store.add_execution(
            Execution(id=execution_id, job_id=job_id, status=status, created_at=T0, node=node)
        )
    assert store.count_active() == {"a": 2, "b": 1}


def _claim_all(spec: StoreSpec, name: str, count: int, results: Any) -> None:
    from datetime import timedelta as td

    from engine.model import Execution, Status

    other = _open(spec)
    won = []
    for n in range(count):
        execution = Execution(
            id=f"{name}-{n}", job_id=f"c{n}", status=Status.QUEUED, created_at=T0, node=name
        )
        if other.claim_fire(f"c{n}", T0, T0 + td(minutes=5), [execution]):
            won.append(n)
    other.close()
    results.put((name, won))


def test_claims_from_several_processes_win_each_fire_once(shared: StoreSpec) -> None:
    """Three processes race to claim the same 200 due fires in one store: every fire is
    won exactly once, and only the winner's execution is written."""
    first = _open(shared)
    for n in range(200):
        first.add_job(make_job(f"c{n}", next_run_time=T0))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    racers = [
        context.Process(target=_claim_all, args=(shared, name, 200, results))
        for name in ("p1", "p2", "p3")
    ]
    for racer in racers:
        racer.start()
    won = dict(results.get(timeout=90) for _ in racers)
    for racer in racers:
        racer.join(60)
        assert racer.exitcode == 0
    claimed = sorted(n for numbers in won.values() for n in numbers)
    assert claimed == list(range(200))  # each fire once, none lost
    executions = first.list_executions(limit=1000)
    assert len(executions) == 200
    assert {e.id for e in executions} == {f"{p}-{n}" for p, ns in won.items() for n in ns}
    first.close()
