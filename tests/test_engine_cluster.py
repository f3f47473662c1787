"""Several engines on one store, on a fake clock: each is a node (engine/cluster.py).

Two Schedulers share one MemoryStore, each with its own node id; the tests drive each
node's loop with `run_once` and its keeper's steps by hand, so every interleaving is
exact. The multi-process version of the same (real processes, real SQLite and MongoDB
files) is tests/test_cluster_processes.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

import engine.cluster
from engine import events as ev
from engine.clock import FakeClock
from engine.errors import ExecutionNotCancellable
from engine.interfaces import JobChange
from engine.model import Node as EngineNode
from engine.model import Status
from engine.scheduler import Scheduler
from stores.memory import MemoryStore
from tests.engine_support import T0, Recorder, date_at, every, make_job, wait_until_cancelled


class Node:
    """One node: a Scheduler with a node id, stepped by hand."""

    def __init__(self, name: str, store: MemoryStore, clock: FakeClock, runner: Recorder) -> None:
        self.runner = runner
        self.scheduler = Scheduler(store, runner, clock=clock, node_id=name, lease_seconds=10)
        self.clock = clock
        self.scheduler.start(loop_thread=False)
        keeper = self.scheduler.node
        assert keeper is not None
        self.keeper = keeper

    def step(self) -> None:
        """What the node's threads do in one tick: follow the feed, then the loop."""
        self.keeper.follow_changes()
        self.keeper.take_cancels()
        self.scheduler.run_once(self.clock.now())

    def do(self, future: object) -> object:
        self.scheduler.run_once(self.clock.now())
        return future.result(timeout=5)  # type: ignore[attr-defined]


@contextmanager
def two_nodes(
    runner_a: Recorder | None = None, runner_b: Recorder | None = None
) -> Iterator[tuple[MemoryStore, FakeClock, Node, Node]]:
    store = MemoryStore()
    clock = FakeClock(T0 - timedelta(seconds=1))
    a = Node("a:1", store, clock, runner_a or Recorder())
    b = Node("b:2", store, clock, runner_b or Recorder())
    try:
        yield store, clock, a, b
    finally:
        for node in (a, b):
            node.scheduler.shutdown(timeout=5)


def test_both_nodes_register_and_heartbeat_their_running_count() -> None:
    with two_nodes() as (store, clock, a, _b):
        assert [n.node_id for n in store.list_nodes()] == ["a:1", "b:2"]
        clock.set(T0 + timedelta(seconds=30))
        a.keeper.heartbeat()
        nodes = {n.node_id: n for n in store.list_nodes()}
        assert nodes["a:1"].alive(clock.now()) and not nodes["b:2"].alive(clock.now())
        assert nodes["a:1"].running == 0


def test_a_job_added_through_one_node_reaches_the_other_and_fires_once() -> None:
    with two_nodes() as (store, clock, a, b):
        a.do(a.scheduler.add_job(make_job("j", date_at(T0))))
        assert b.scheduler.scheduled_jobs == 0
        b.step()
        assert b.scheduler.scheduled_jobs == 1
        clock.set(T0)
        b.step()
        a.step()
        for node in (a, b):
            assert node.scheduler.wait_idle(5)
        executions = store.list_executions(job_id="j")
        assert [e.status for e in executions] == [Status.COMPLETED]
        assert len(a.runner.requests) + len(b.runner.requests) == 1
        assert executions[0].node in {"a:1", "b:2"}


def test_pause_resume_and_remove_through_one_node_are_obeyed_by_the_other() -> None:
    with two_nodes() as (_store, _clock, a, b):
        a.do(a.scheduler.add_job(make_job("j", every(60, start=T0))))
        b.step()
        assert b.scheduler.scheduled_jobs == 1
        a.do(a.scheduler.pause_job("j"))
        b.step()
        assert b.scheduler.scheduled_jobs == 0
        a.do(a.scheduler.resume_job("j"))
        b.step()
        assert b.scheduler.scheduled_jobs == 1
        b.do(b.scheduler.remove_job("j"))
        a.step()
        assert a.scheduler.scheduled_jobs == 0 and b.scheduler.scheduled_jobs == 0


def test_a_modify_on_one_node_moves_the_fire_on_the_other() -> None:
    with two_nodes() as (store, clock, a, b):
        a.do(a.scheduler.add_job(make_job("j", date_at(T0 + timedelta(hours=1)))))
        b.step()
        a.do(a.scheduler.modify_job("j", trigger=date_at(T0)))
        clock.set(T0)
        b.step()  # b alone steps at T0: it must know the new time to fire it
        assert b.scheduler.wait_idle(5)
        assert len(b.runner.requests) == 1
        assert [e.node for e in store.list_executions(job_id="j")] == ["b:2"]


def test_a_nodes_own_changes_are_not_reloaded() -> None:
    class CountingStore(MemoryStore):
        reloads = 0

        def get_jobs(self, job_ids: object) -> dict[str, object]:  # type: ignore[override]
            CountingStore.reloads += 1
            return super().get_jobs(job_ids)  # type: ignore[arg-type]

    store = CountingStore()
    clock = FakeClock(T0 - timedelta(seconds=1))
    a = Node("a:1", store, clock, Recorder())
    try:
        for n in range(5):
            a.do(a.scheduler.add_job(make_job(f"j{n}", every(60, start=T0))))
        a.do(a.scheduler.pause_job("j0"))
        before = CountingStore.reloads
        a.step()
        assert CountingStore.reloads == before  # all six changes were its own
        store.update_job(store.get_job("j1"))  # a write from elsewhere
        a.step()
        assert CountingStore.reloads == before + 1
    finally:
        a.scheduler.shutdown(timeout=5)


def test_a_cancel_through_one_node_stops_the_run_on_the_node_running_it() -> None:
    with two_nodes(runner_a=Recorder(wait_until_cancelled)) as (_store, clock, a, b):
        a.do(a.scheduler.add_job(make_job("long", every(3600, start=T0 + timedelta(hours=1)))))
        run = a.do(a.scheduler.run_job_now("long"))
        assert a.runner.started.wait(5)
        future = b.scheduler.cancel_execution(run.id)  # type: ignore[attr-defined]
        b.scheduler.run_once(clock.now())
        assert not future.done()  # forwarded: b waits for a's record
        a.step()  # a takes the request and cancels its run
        assert a.scheduler.wait_idle(5)
        b.keeper.settle_remote_cancels()
        settled = future.result(timeout=5)
        assert settled.status is Status.CANCELLED and settled.node == "a:1"


def test_a_cancel_of_a_finished_run_elsewhere_is_refused_as_before() -> None:
    with two_nodes() as (_store, _clock, a, b):
        a.do(a.scheduler.add_job(make_job("quick", every(3600, start=T0 + timedelta(hours=1)))))
        run = a.do(a.scheduler.run_job_now("quick"))
        assert a.scheduler.wait_idle(5)
        with pytest.raises(ExecutionNotCancellable):
            b.do(b.scheduler.cancel_execution(run.id))  # type: ignore[attr-defined]


class GappyStore(MemoryStore):
    """Hands out the feed with seq 2 missing until `fill` is set, like a writer that
    has taken a seq and not yet inserted its change."""

    fill = False

    def job_changes(self, after: int, limit: int = 1000) -> list[JobChange]:
        changes = super().job_changes(after, limit)
        return changes if self.fill else [c for c in changes if c.seq != 2]


def test_the_cursor_waits_below_a_gap_and_applies_what_fills_it() -> None:
    store = GappyStore()
    clock = FakeClock(T0 - timedelta(seconds=1))
    b = Node("b:2", store, clock, Recorder())
    try:
        for name in ("x", "y", "z"):  # seqs 1, 2, 3, written by "another node"
            store.add_job(make_job(name, every(60, start=T0), next_run_time=T0))
        assert b.keeper.follow_changes() == 2  # x and z
        b.scheduler.run_once(clock.now())
        assert b.scheduler.scheduled_jobs == 2
        store.fill = True
        assert b.keeper.follow_changes() == 1  # y, once; x and z not again
        b.scheduler.run_once(clock.now())
        assert b.scheduler.scheduled_jobs == 3
        assert b.keeper.follow_changes() == 0
    finally:
        b.scheduler.shutdown(timeout=5)


def test_a_gap_that_never_fills_is_passed_with_a_full_reload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine.cluster, "GAP_WAIT", 0.0)
    store = GappyStore()
    clock = FakeClock(T0 - timedelta(seconds=1))
    b = Node("b:2", store, clock, Recorder())
    try:
        for name in ("x", "y", "z"):
            store.add_job(make_job(name, every(60, start=T0), next_run_time=T0))
        b.keeper.follow_changes()
        b.scheduler.run_once(clock.now())
        assert b.scheduler.scheduled_jobs == 3  # y came back with the full reload
        store.add_job(make_job("w", every(60, start=T0), next_run_time=T0))
        assert b.keeper.follow_changes() == 1  # the cursor moved past the gap
    finally:
        b.scheduler.shutdown(timeout=5)


def test_a_clean_shutdown_leaves_the_list_of_nodes() -> None:
    store = MemoryStore()
    clock = FakeClock(T0)
    node = Node("a:1", store, clock, Recorder())
    assert [n.node_id for n in store.list_nodes()] == ["a:1"]
    node.scheduler.shutdown(timeout=5)
    assert store.list_nodes() == []


def _running_on(store: MemoryStore, node: str, execution_id: str) -> None:
    from engine.model import Execution

    store.add_execution(
        Execution(id=execution_id, job_id="j", status=Status.RUNNING, created_at=T0, node=node)
    )


def test_a_starting_node_leaves_a_live_nodes_executions_alone() -> None:
    store = MemoryStore()
    clock = FakeClock(T0)
    store.heartbeat(EngineNode("a:1", started_at=T0, last_heartbeat=T0))
    _running_on(store, "a:1", "theirs")
    _running_on(store, "c:3", "mine-before")  # this node's earlier life
    _running_on(store, None, "no-node")  # written before nodes existed  # type: ignore[arg-type]
    c = Node("c:3", store, clock, Recorder())
    try:
        assert store.get_execution("theirs").status is Status.RUNNING
        assert store.get_execution("mine-before").status is Status.ABANDONED
        assert store.get_execution("no-node").status is Status.ABANDONED
    finally:
        c.scheduler.shutdown(timeout=5)


def test_the_sweep_abandons_only_what_a_dead_node_left() -> None:
    store = MemoryStore()
    clock = FakeClock(T0)
    b = Node("b:2", store, clock, Recorder())
    try:
        store.heartbeat(EngineNode("a:1", started_at=T0, last_heartbeat=T0, lease_seconds=10))
        _running_on(store, "a:1", "dead-one")
        _running_on(store, "b:2", "live-one")
        clock.set(T0 + timedelta(seconds=10))
        assert b.keeper.sweep() == 0  # the lease has not passed yet
        clock.set(T0 + timedelta(seconds=10, milliseconds=1))
        b.keeper.heartbeat()
        heard: list[ev.Event] = []
        b.scheduler.events.subscribe(heard.append, [ev.EXECUTION_FAILED])
        assert b.keeper.sweep() == 1
        dead = store.get_execution("dead-one")
        assert dead.status is Status.ABANDONED and "node a:1" in dead.error
        # announced, so the job's `notify` hears of it (jobs/notify.py)
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:  # delivered on the bus's thread
            time.sleep(0.01)
        assert [(e.execution.id, e.execution.status) for e in heard if e.execution] == [
            ("dead-one", Status.ABANDONED)
        ]
        assert store.get_execution("live-one").status is Status.RUNNING
        assert "a:1" in [n.node_id for n in store.list_nodes()]  # listed, not alive
        clock.set(T0 + timedelta(seconds=301))
        b.keeper.heartbeat()
        b.keeper.sweep()
        assert [n.node_id for n in store.list_nodes()] == ["b:2"]
    finally:
        b.scheduler.shutdown(timeout=5)


def _queued_on(store: MemoryStore, node: str, execution_id: str, due_seconds: float) -> None:
    from engine.model import Execution

    store.add_execution(
        Execution(
            id=execution_id,
            job_id="j",
            status=Status.QUEUED,
            created_at=T0,
            scheduled_for=T0 + timedelta(seconds=due_seconds),
            node=node,
        )
    )


def _sweeper_of_dead_a() -> tuple[MemoryStore, FakeClock, Node]:
    """Node b:2 on a store where node a:1 last heartbeat at T0 (lease 10 s), job j."""
    store = MemoryStore()
    clock = FakeClock(T0)
    b = Node("b:2", store, clock, Recorder())
    store.add_job(make_job("j", date_at(T0), misfire_grace_time=30))
    store.heartbeat(EngineNode("a:1", started_at=T0, last_heartbeat=T0, lease_seconds=10))
    return store, clock, b


def test_a_dead_nodes_claimed_fires_run_once_on_the_sweeper_or_are_missed() -> None:
    store, clock, b = _sweeper_of_dead_a()
    try:
        _queued_on(store, "a:1", "in-grace", due_seconds=0)
        _queued_on(store, "a:1", "too-late", due_seconds=-40)
        clock.set(T0 + timedelta(seconds=11))
        b.keeper.heartbeat()
        b.keeper.sweep()
        b.scheduler.run_once(clock.now())
        assert b.scheduler.wait_idle(5)
        ran = store.get_execution("in-grace")
        assert (ran.status, ran.node) == (Status.COMPLETED, "b:2")
        assert [r.execution.id for r in b.runner.requests] == ["in-grace"]
        missed = store.get_execution("too-late")
        assert missed.status is Status.MISSED and "misfire_grace_time" in missed.error
        assert "claimed before node a:1 stopped" in missed.output
        b.keeper.sweep()  # a second sweep finds nothing left to take
        b.scheduler.run_once(clock.now())
        assert b.scheduler.wait_idle(5) and len(b.runner.requests) == 1
    finally:
        b.scheduler.shutdown(timeout=5)


def test_a_dead_nodes_journaled_fire_is_abandoned_by_the_sweep_and_never_run() -> None:
    """The fire a dead process's start journal names had started (its running mark had
    not reached the store): the sweep abandons it and must not also run it again."""
    store, clock, b = _sweeper_of_dead_a()
    try:
        _queued_on(store, "a:1", "begun", due_seconds=0)
        _queued_on(store, "a:1", "never-begun", due_seconds=0)
        b.keeper.journaled.add("begun")
        for seconds in range(1, 12):  # b renews each second: its starts are not fenced
            clock.set(T0 + timedelta(seconds=seconds))
            b.keeper.heartbeat()
        assert b.keeper.sweep() == 1
        b.scheduler.run_once(clock.now())
        assert b.scheduler.wait_idle(5)
        assert [r.execution.id for r in b.runner.requests] == ["never-begun"]
        assert store.get_execution("begun").status is Status.ABANDONED
        assert store.get_execution("never-begun").status is Status.COMPLETED
    finally:
        b.scheduler.shutdown(timeout=5)


def test_a_restarted_node_runs_the_fires_its_earlier_life_claimed() -> None:
    store = MemoryStore()
    clock = FakeClock(T0 + timedelta(seconds=2))
    store.add_job(make_job("j", date_at(T0)))
    _queued_on(store, "a:1", "claimed-before-crash", due_seconds=0)
    a = Node("a:1", store, clock, Recorder())
    try:
        a.scheduler.run_once(clock.now())
        assert a.scheduler.wait_idle(5)
        assert store.get_execution("claimed-before-crash").status is Status.COMPLETED
        assert len(a.runner.requests) == 1
    finally:
        a.scheduler.shutdown(timeout=5)


def test_max_instances_counts_the_runs_of_every_node() -> None:
    with two_nodes(runner_a=Recorder(wait_until_cancelled)) as (store, clock, a, b):
        a.do(a.scheduler.add_job(make_job("solo", every(60, start=T0), max_instances=1)))
        b.step()
        a.keeper.heartbeat()  # a now knows b is alive too
        clock.set(T0)
        a.step()  # a wins the first occurrence and runs it (until cancelled)
        assert a.runner.started.wait(5)
        clock.set(T0 + timedelta(seconds=60))
        a.keeper.heartbeat()
        b.keeper.heartbeat()
        b.step()  # b holds the next occurrence while a's run is still going
        executions = {e.scheduled_for: e for e in store.list_executions(job_id="solo")}
        second = executions[T0 + timedelta(seconds=60)]
        assert second.status is Status.SKIPPED and "max_instances" in second.error
        assert b.runner.requests == []
        a.scheduler.cancel_execution(executions[T0].id)
        a.scheduler.run_once(clock.now())
        assert a.scheduler.wait_idle(5)
