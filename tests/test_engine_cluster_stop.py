"""A node's stop when the store does not answer: the shutdown is not held for it.

With the MongoDB server gone, a SIGTERM took 10-15 s: the stop waited for the keeper's
thread to come out of a store call (a 5 s server selection) and then deregistered
through another. Here the store is a MemoryStore whose calls block or fail on demand,
and the keeper's real thread runs against it.
"""

from __future__ import annotations

import threading
import time

from engine.clock import FakeClock
from engine.cluster import NodeKeeper
from engine.errors import StoreError
from engine.interfaces import JobChange
from engine.model import Node
from stores.memory import MemoryStore
from tests.engine_support import T0, wait_for


class StallingStore(MemoryStore):
    """Reads of the change feed block while `stall` is set, or fail while `fail` is."""

    def __init__(self) -> None:
        super().__init__()
        self.stall = threading.Event()
        self.fail = False
        self.in_call = threading.Event()
        self.release = threading.Event()
        self.removed: list[str] = []

    def job_changes(self, after: int, limit: int) -> list[JobChange]:
        if self.fail:
            raise StoreError("store failed: connection refused")
        if self.stall.is_set():
            self.in_call.set()
            self.release.wait(10)
        return super().job_changes(after, limit)

    def remove_node(self, node_id: str) -> None:
        self.removed.append(node_id)
        super().remove_node(node_id)


def started_keeper(store: StallingStore) -> NodeKeeper:
    keeper = NodeKeeper(
        store, "a:1", FakeClock(T0), post=lambda _c: True, running=lambda: 0, poll_every=0.01
    )
    keeper.register()
    keeper.start()
    return keeper


def test_a_keeper_stuck_in_a_store_call_stops_without_deregistering() -> None:
    store = StallingStore()
    store.stall.set()
    keeper = started_keeper(store)
    try:
        assert store.in_call.wait(5)
        began = time.monotonic()
        keeper.stop(join_timeout=0.05)
        assert time.monotonic() - began < 2.0  # not the 10 s the thread could hold it
        assert store.removed == []  # left to the lease: that call would hang as well
        assert [n.node_id for n in store.list_nodes()] == ["a:1"]
    finally:
        store.release.set()


def test_after_a_failed_tick_the_stop_leaves_the_node_to_its_lease() -> None:
    store = StallingStore()
    store.fail = True
    keeper = started_keeper(store)
    assert wait_for(lambda: keeper._store_failing)
    keeper.stop(join_timeout=2.0)
    assert store.removed == []


def test_a_store_that_came_back_is_left_cleanly() -> None:
    store = StallingStore()
    store.fail = True
    keeper = started_keeper(store)
    assert wait_for(lambda: keeper._store_failing)
    store.fail = False
    assert wait_for(lambda: not keeper._store_failing)
    keeper.stop(join_timeout=2.0)
    assert store.removed == ["a:1"]
    assert store.list_nodes() == []


def test_a_healthy_keeper_deregisters_on_stop() -> None:
    store = StallingStore()
    keeper = started_keeper(store)
    assert wait_for(lambda: any(isinstance(n, Node) for n in store.list_nodes()))
    keeper.stop()
    assert store.removed == ["a:1"]
