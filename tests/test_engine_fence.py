"""The start fence on a fake clock: a node that stalled past its lease starts nothing
another node took over meanwhile (engine/running/fence.py).

Node a has one worker, held by a long run ("blocker"), so its next claimed fire waits
in its backlog: claimed, not started, exactly what a stalled node holds. Its
heartbeats stop (the test calls none) while the clock passes its lease; node b sweeps
it and takes the fire over. The real-process version (SIGSTOP, SQLite) is in
tests/test_cluster_fence.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from engine import events as ev
from engine.clock import FakeClock
from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Status
from engine.scheduler import Scheduler
from stores.memory import MemoryStore
from tests.engine_support import T0, Recorder, date_at, make_job, wait_for

LEASE = 10


class CountingStore(MemoryStore):
    """Counts the conditional starts (the fenced path's store write)."""

    def __init__(self) -> None:
        super().__init__()
        self.fenced_starts: list[str] = []

    def start_claimed(self, execution: Execution) -> bool:
        self.fenced_starts.append(execution.id)
        return super().start_claimed(execution)


class Gated:
    """A runner whose "blocker" runs until `gate` opens (the stalled node's busy worker)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.recorder = Recorder(self._behave)

    def _behave(self, request: RunRequest) -> Outcome:
        if request.job.id == "blocker":
            self.gate.wait(10)
        return Outcome(Status.COMPLETED, output="ok\n")

    def ran(self, job_id: str) -> int:
        return self.recorder.job_ids.count(job_id)


def node(store: MemoryStore, clock: FakeClock, name: str, runner: object) -> Scheduler:
    scheduler = Scheduler(
        store,
        runner,
        clock=clock,
        node_id=name,
        lease_seconds=LEASE,
        pool_size=1,  # type: ignore[arg-type]
    )
    scheduler.start(loop_thread=False)
    return scheduler


@contextmanager
def stalled_claim() -> Iterator[tuple[CountingStore, FakeClock, Scheduler, Gated, str]]:
    """Node a busy with "blocker" and holding the claimed, unstarted fire of "fire"."""
    store = CountingStore()
    clock = FakeClock(T0 - timedelta(seconds=1))
    runner = Gated()
    a = node(store, clock, "a:1", runner.recorder)
    try:
        for job_id, due in (("blocker", T0), ("fire", T0 + timedelta(seconds=1))):
            a.add_job(make_job(job_id, date_at(due)))
            a.run_once(clock.now())
        clock.set(T0)
        a.run_once(clock.now())
        assert runner.recorder.started.wait(5)  # its one worker is busy now
        clock.set(T0 + timedelta(seconds=1))
        assert a.node is not None
        a.node.heartbeat()
        a.run_once(clock.now())  # claims "fire": it waits in the backlog
        (fire,) = store.list_executions(job_id="fire")
        assert (fire.status, fire.node) == (Status.QUEUED, "a:1")
        blocker = store.list_executions(job_id="blocker")[0].id
        assert wait_for(lambda: store.get_execution(blocker).status is Status.RUNNING)
        yield store, clock, a, runner, fire.id
    finally:
        runner.gate.set()
        a.shutdown(timeout=5)


def test_a_node_waking_after_its_claim_was_taken_over_does_not_start_it() -> None:
    with stalled_claim() as (store, clock, a, runner, fire_id):
        b = node(store, clock, "b:2", Recorder())  # a is alive: b leaves its work alone
        try:
            assert store.get_execution(fire_id).node == "a:1"
            assert b.node is not None
            for second in range(2, LEASE + 3):  # b heartbeats on; a is silent past its lease
                clock.set(T0 + timedelta(seconds=second))
                b.node.heartbeat()
            assert b.node.sweep() == 1  # the blocker abandoned, the fire taken over
            b.run_once(clock.now())
            assert b.wait_idle(5)
            taken = store.get_execution(fire_id)
            assert (taken.status, taken.node) == (Status.COMPLETED, "b:2")
            heard: list[ev.Event] = []
            a.events.subscribe(heard.append)
            # a wakes: its keeper renews first (the harder order: the lease is fresh
            # again when the worker looks), then its worker reaches the fire
            assert a.node is not None
            a.node.heartbeat()
            runner.gate.set()
            assert a.wait_idle(5)
            assert runner.ran("fire") == 0 and runner.ran("blocker") == 1
            assert store.fenced_starts == [fire_id]  # a's; b's lease never lapsed
            after = store.get_execution(fire_id)
            assert (after.status, after.node, after.completed_at) == (
                Status.COMPLETED,
                "b:2",
                taken.completed_at,
            )
            assert store.get_job("fire").total_executions == 1  # recorded once, by b
            assert store.count_executions(job_id="fire") == 1
            fire_events = [e for e in heard if e.execution and e.execution.id == fire_id]
            assert fire_events == []  # a announces no end of a run it did not make
            # wait_idle above: no queued or running count of the job is left over
            assert a.running_execution_ids() == [] and a.worker_backlog == 0
            assert a.live_output(fire_id) is None
        finally:
            b.shutdown(timeout=5)


def test_a_stalled_node_whose_claim_nobody_took_runs_it_after_a_renewal() -> None:
    with stalled_claim() as (store, clock, a, runner, fire_id):
        clock.set(T0 + timedelta(seconds=1 + LEASE + 1))  # stale, but nobody swept
        runner.gate.set()
        # the worker waits for a renewal before it asks the store
        assert not wait_for(lambda: runner.ran("fire") > 0, timeout=0.3)
        assert a.node is not None
        a.node.heartbeat()
        assert wait_for(lambda: runner.ran("fire") == 1)
        assert a.wait_idle(5)
        ran = store.get_execution(fire_id)
        assert (ran.status, ran.node) == (Status.COMPLETED, "a:1")
        assert store.fenced_starts == [fire_id]
        assert store.get_job("fire").total_executions == 1


def test_runs_claimed_under_a_fresh_lease_start_without_asking_the_store() -> None:
    store = CountingStore()
    clock = FakeClock(T0 - timedelta(seconds=1))
    runner = Recorder()
    a = node(store, clock, "a:1", runner)
    try:
        for n in range(5):
            a.add_job(make_job(f"j{n}", date_at(T0 + timedelta(seconds=2 * n))))
            a.run_once(clock.now())
        for n in range(5):
            clock.set(T0 + timedelta(seconds=2 * n))
            assert a.node is not None
            a.node.heartbeat()  # one a second in life; every 2 s is within half the lease
            a.run_once(clock.now())
            assert a.wait_idle(5)
        assert sorted(runner.job_ids) == [f"j{n}" for n in range(5)]
        assert store.fenced_starts == []
    finally:
        a.shutdown(timeout=5)


def test_runs_claimed_long_after_a_lapse_start_on_trust_again() -> None:
    store = CountingStore()
    clock = FakeClock(T0 - timedelta(seconds=1))
    runner = Recorder()
    a = node(store, clock, "a:1", runner)
    try:
        a.add_job(make_job("soon", date_at(T0 + timedelta(seconds=20))))
        a.add_job(make_job("later", date_at(T0 + timedelta(seconds=40))))
        a.run_once(clock.now())
        assert a.node is not None
        clock.set(T0 + timedelta(seconds=20))  # 21 s without a heartbeat: a lapse
        a.node.heartbeat()
        a.run_once(clock.now())
        assert a.wait_idle(5)
        assert store.fenced_starts == [store.list_executions(job_id="soon")[0].id]
        clock.set(T0 + timedelta(seconds=40))  # claimed more than a lease after it
        for second in range(20, 41):
            clock.set(T0 + timedelta(seconds=second))
            a.node.heartbeat()
        a.run_once(clock.now())
        assert a.wait_idle(5)
        assert sorted(runner.job_ids) == ["later", "soon"]
        assert len(store.fenced_starts) == 1
    finally:
        a.shutdown(timeout=5)
