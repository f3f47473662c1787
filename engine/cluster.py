"""One node among several on one store: heartbeats, the job change feed, remote cancels.

The store is the distributed part (ARCHITECTURE.md, "Several nodes on one store"); a
`NodeKeeper` is this process's side of it, one thread that never touches the timetable:
- it registers the node and renews its lease with a heartbeat every `heartbeat_every`
  seconds (the running count rides along, for `GET /api/scheduler/nodes`);
- every `poll_every` seconds it reads the job change feed past its cursor and hands the
  loop a `SyncJobs` naming each changed job, so a job added, changed, paused or removed
  through any node reaches every node's heap within about that long, without any node
  re-reading every job;
- it takes the cancel requests other nodes left for this one and hands them to the loop
  (`CancelExecution(forward=False)`), and settles the cancels this node forwarded once
  the running node has recorded the end.

Feed gaps: seqs are unique and increasing, but on a store without transactions a
writer may have taken seq n and not yet inserted it when seq n+1 is read. The cursor
stops below the first gap, changes above it are applied once and remembered, and a gap
older than GAP_WAIT seconds (its writer died between the two steps) is passed with a
full reload, since which job it named is unknown.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

from engine.clock import Clock
from engine.errors import EngineStopped
from engine.events import EventBus
from engine.interfaces import CHANGES_KEPT, SchedulerStore
from engine.model import Execution, Node
from engine.running.fence import StartFence
from engine.scheduling.commands import CancelExecution, Command, RunTakenOver, SyncJobs
from engine.scheduling.recovery import abandon_begun, announce_abandoned
from engine.scheduling.takeover import requeue_note

log = logging.getLogger(__name__)
#: seconds a gap in the change feed is waited for before it is passed with a full reload
GAP_WAIT = 5.0
#: seconds between prunes of the change feed's old tail
PRUNE_EVERY = 60.0
#: seconds a forwarded cancel waits for the running node before answering as it stands
REMOTE_CANCEL_WAIT = 10.0
#: seconds between sweeps for nodes whose lease has passed
SWEEP_EVERY = 2.0
#: a dead node stays listed (alive: false) this many leases, then leaves the list
DEAD_LISTED_LEASES = 30
#: seconds a stop waits for the keeper's thread to finish its tick; a healthy store
#: answers in milliseconds, so a thread still busy after this is stuck on a store that
#: does not answer, and waiting out its timeouts only delays the shutdown
STOP_JOIN = 2.0
DEAD_NODE_MESSAGE = (
    "node {node} stopped renewing its lease (last heartbeat {last}) while this execution "
    "was queued or running; node {sweeper} marked it abandoned"
)


@dataclass(slots=True)
class _RemoteCancel:
    future: Future[Execution]
    deadline: float


class NodeKeeper:
    def __init__(
        self,
        store: SchedulerStore,
        node_id: str,
        clock: Clock,
        post: Callable[[Command], bool],
        running: Callable[[], int],
        *,
        lease_seconds: float = 10.0,
        heartbeat_every: float = 1.0,
        poll_every: float = 0.25,
        events: EventBus | None = None,
        fence: StartFence | None = None,
    ) -> None:
        self.node_id = node_id
        #: told of every heartbeat that reached the store (engine/running/fence.py)
        self._fence = fence
        #: where the executions a sweep abandons are announced (None: nowhere)
        self._events = events
        self.lease_seconds = lease_seconds
        self.heartbeat_every = heartbeat_every
        self.poll_every = poll_every
        self._store = store
        self._clock = clock
        self._post = post
        self._running = running
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = clock.now()
        self._cursor = 0
        #: seqs above the cursor already applied (the cursor waits below a gap)
        self._applied: set[int] = set()
        #: when each gap seq was first seen missing (monotonic seconds)
        self._gaps: dict[int, float] = {}
        self._remote: dict[str, _RemoteCancel] = {}
        #: whether another node was alive at the last look (each heartbeat)
        self.others_alive = False
        #: runs the start journals of dead processes on this machine say began, whose
        #: node was still alive by its lease at start (see Recovery.journaled)
        self.journaled: set[str] = set()
        self._remote_lock = threading.Lock()
        #: whether the thread's last tick failed on the store (then a stop does not
        #: deregister: that call would wait out the same timeouts)
        self._store_failing = False

    # -- lifecycle -------------------------------------------------------------------
    def register(self) -> None:
        """Before recovery: take the feed's position (what recovery then loads is at
        least as new as it) and write this node's first heartbeat."""
        self._cursor = self._store.last_job_change()
        self._started_at = self._clock.now()
        self.heartbeat()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cronwell-node", daemon=True)
        self._thread.start()

    def stop(self, join_timeout: float = STOP_JOIN) -> None:
        """Stop the thread and leave the store's list of nodes (a clean shutdown).

        With the store not answering (the last tick failed, or the thread is still in a
        store call after `join_timeout`), the node is not deregistered: its lease runs
        out instead, as a stopped node's does, and the shutdown is not held for the
        store's timeouts (a SIGTERM took 10-15 s with the MongoDB server gone)."""
        self._stopping.set()
        stuck = False
        if self._thread is not None:
            self._thread.join(join_timeout)
            stuck = self._thread.is_alive()
        if stuck or self._store_failing:
            log.warning(
                "node %s: the store is not answering; not deregistering, its lease "
                "(%g s) will expire",
                self.node_id,
                self.lease_seconds,
            )
        else:
            try:
                self._store.remove_node(self.node_id)
            except Exception:
                log.warning("node %s could not deregister; its lease will expire", self.node_id)
        with self._remote_lock:
            waiting, self._remote = self._remote, {}
        for entry in waiting.values():
            with contextlib.suppress(InvalidStateError):
                entry.future.set_exception(EngineStopped("the node shut down while waiting"))

    def _run(self) -> None:
        next_beat = next_prune = next_sweep = time.monotonic()
        while not self._stopping.wait(self.poll_every):
            now = time.monotonic()
            try:
                if now >= next_beat:
                    self.heartbeat()
                    next_beat = now + self.heartbeat_every
                self.follow_changes()
                self.take_cancels()
                self.settle_remote_cancels()
                if now >= next_sweep:
                    self.sweep()
                    next_sweep = now + SWEEP_EVERY
                if now >= next_prune:
                    self._prune()
                    next_prune = now + PRUNE_EVERY
            except Exception:  # a store hiccup: the next tick tries again
                self._store_failing = True
                log.warning("node %s: store call failed; retrying", self.node_id, exc_info=True)
            else:
                self._store_failing = False

    # -- steps (each also called by the tests, on a fake clock) -----------------------
    def heartbeat(self) -> None:
        now = self._clock.now()
        node = Node(
            self.node_id,
            started_at=self._started_at,
            last_heartbeat=now,
            lease_seconds=self.lease_seconds,
            running=self._running(),
        )
        self._store.heartbeat(node)
        if self._fence is not None:
            self._fence.renewed(now)
        self.others_alive = any(
            n.node_id != self.node_id and n.alive(now) for n in self._store.list_nodes()
        )

    def follow_changes(self, limit: int = 1000) -> int:
        """Hand the loop every change past the cursor not yet applied; return how many."""
        changes = self._store.job_changes(self._cursor, limit)
        fresh = [c for c in changes if c.seq not in self._applied]
        if fresh:
            self._post(SyncJobs([c.job_id for c in fresh]))
            self._applied.update(c.seq for c in fresh)
        self._advance(max((c.seq for c in changes), default=self._cursor))
        return len(fresh)

    def _advance(self, highest: int) -> None:
        """Move the cursor over every seq applied in a row, waiting below a young gap."""
        now = time.monotonic()
        lost = False
        while self._cursor < highest:
            seq = self._cursor + 1
            if seq in self._applied:
                self._applied.discard(seq)
                self._gaps.pop(seq, None)
            else:
                first_seen = self._gaps.setdefault(seq, now)
                if now - first_seen < GAP_WAIT:
                    return
                del self._gaps[seq]
                lost = True
            self._cursor = seq
        if lost:
            log.warning(
                "node %s: a change went missing in the feed; reloading every job", self.node_id
            )
            self._post(SyncJobs(None))

    def take_cancels(self) -> int:
        taken = self._store.take_cancel_requests(self.node_id)
        for execution_id in taken:
            self._post(CancelExecution(execution_id, forward=False))
        return len(taken)

    def wait_remote_cancel(
        self, execution_id: str, node_id: str, future: Future[Execution]
    ) -> None:
        """Called on the loop thread: ask `node_id` to cancel, settle `future` later."""
        self._store.request_cancel(execution_id, node_id)
        with self._remote_lock:
            self._remote[execution_id] = _RemoteCancel(
                future, time.monotonic() + REMOTE_CANCEL_WAIT
            )

    def settle_remote_cancels(self) -> None:
        with self._remote_lock:
            waiting = list(self._remote.items())
        now = time.monotonic()
        for execution_id, entry in waiting:
            execution = self._store.get_execution(execution_id)
            if not execution.terminal and now < entry.deadline:
                continue
            with self._remote_lock:
                self._remote.pop(execution_id, None)
            with contextlib.suppress(InvalidStateError):  # the caller gave up
                entry.future.set_result(execution)

    def sweep(self) -> int:
        """Take over what nodes whose lease has passed claimed and never started (the
        loop runs each within its misfire grace, else records it missed) and abandon
        what they left running; a node dead for DEAD_LISTED_LEASES leases leaves the
        list. Returns how many were abandoned."""
        now = self._clock.now()
        abandoned = 0
        for node in self._store.list_nodes():
            if node.node_id == self.node_id or node.alive(now):
                continue
            message = DEAD_NODE_MESSAGE.format(
                node=node.node_id, last=node.last_heartbeat.isoformat(), sweeper=self.node_id
            )
            taken = self._store.take_over(
                node.node_id, self.node_id, requeue_note(now, node.node_id)
            )
            begun = [e for e in taken if e.id in self.journaled]
            unstarted = [e for e in taken if e.id not in self.journaled]  # before the update
            if begun:  # this machine's journal says they started: never run twice
                abandon_begun(self._store, begun, now, message)
                self.journaled.difference_update(e.id for e in begun)
            if unstarted:
                self._post(RunTakenOver(unstarted, node.node_id))
            marked = self._store.abandon_running(now, message, only_nodes=[node.node_id])
            if self._events is not None:
                announce_abandoned(self._events, [*begun, *marked], now)
            count = len(marked) + len(begun)
            if count:
                log.warning(
                    "node %s is gone (lease passed); %d of its executions abandoned",
                    node.node_id,
                    count,
                )
            abandoned += count
            silent = (now - node.last_heartbeat).total_seconds()
            if silent > DEAD_LISTED_LEASES * node.lease_seconds:
                self._store.remove_node(node.node_id)
        return abandoned

    def _prune(self) -> None:
        through = self._store.last_job_change() - CHANGES_KEPT
        if through > 0:
            self._store.prune_job_changes(through)

    def nodes(self) -> list[Node]:
        return self._store.list_nodes()
