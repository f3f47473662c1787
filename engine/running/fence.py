"""The start fence: a node whose lease may have lapsed starts nothing on trust.

A node that stalls past its lease (SIGSTOP, a frozen VM, a long pause) is judged dead
by the others, whose sweep takes over the fires it claimed and had not started
(engine/cluster.py). When it wakes, its workers still hold those fires; started as
usual, each would run twice. So the node keeper tells the fence of every heartbeat
that reached the store (the time it wrote, which is what other nodes judge the lease
by), and before a worker starts a claimed run it tests whether the start is doubtful:
- the last renewal is older than half the lease (the node may be stalled or cut off
  right now, its lease lapsing), or
- renewals once stopped for longer than half the lease (a lapse), and the run was
  claimed before that lapse ended, or less than a lease after it (a sweep that read
  the node list during the lapse may still be taking over what it found).

A doubtful start waits (bounded) for a renewal, then is made by the store's
conditional write (`SchedulerStore.start_claimed`: queued and still this node's ->
running), which `take_over` cannot interleave with: the run starts only if no other
node took it, and a node that took it is the one that runs it. Half the lease is the
margin for the clocks' skew and for the moment between the check and the start
landing in the store (the README's "Several nodes, one store" gives the reasoning and
the window that remains). The ordinary start pays one clock read and two compares.
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import datetime

from engine.interfaces import SchedulerStore
from engine.model import Execution
from engine.running.backoff import retry_store_call

log = logging.getLogger(__name__)


class StartFence:
    def __init__(self, lease_seconds: float) -> None:
        #: a renewal older than this (seconds) leaves starts doubtful
        self.margin = lease_seconds / 2
        #: after a lapse, runs claimed up to this long after it ended are doubtful too
        self.grace = lease_seconds
        #: how long a doubtful start waits for a renewal before trying the store anyway
        self.renewal_wait = lease_seconds
        #: the time the last heartbeat that reached the store carried (POSIX seconds)
        self._renewed = -math.inf
        # What makes a start doubtful (the executor tests it inline: two attribute reads):
        #: after this time (POSIX seconds) starts are doubtful until the next renewal
        self.stale_after = -math.inf
        #: whether renewals ever stopped for longer than the margin (a lapse)
        self.lapsed = False
        #: runs claimed up to this time are doubtful: the last lapse's end plus `grace`
        self.suspect_until = -math.inf
        self._renewal = threading.Condition()

    def renewed(self, written: datetime) -> None:
        """The keeper's heartbeat carrying `written` reached the store."""
        at = written.timestamp()
        with self._renewal:
            if self._renewed != -math.inf and at - self._renewed > self.margin:
                self.suspect_until = at + self.grace
                self.lapsed = True
            self._renewed = at
            self.stale_after = at + self.margin
            self._renewal.notify_all()

    def stale(self, now: float) -> bool:
        """Whether no renewal has reached the store within the margin."""
        return now > self.stale_after

    def wait_renewal(self, now: float, stopping: threading.Event) -> bool:
        """Wait until a heartbeat newer than `now - margin` reached the store, up to
        `renewal_wait` seconds; False when none came (or the engine is stopping)."""
        floor = now - self.margin
        with self._renewal:
            return (
                self._renewal.wait_for(
                    lambda: self._renewed >= floor or stopping.is_set(), self.renewal_wait
                )
                and not stopping.is_set()
            )


def start_fenced(
    store: SchedulerStore, fence: StartFence, stopping: threading.Event, execution: Execution
) -> bool:
    """Write a doubtful start (`execution`, marked running) through the store's
    conditional write, after a renewal; False when another node holds the run now."""
    assert execution.started_at is not None
    now = execution.started_at.timestamp()
    if fence.stale(now) and not fence.wait_renewal(now, stopping):
        log.warning(
            "no heartbeat of this node reached the store within %.0f s; asking the store "
            "whether execution %s is still this node's anyway",
            fence.renewal_wait,
            execution.id,
        )
    return retry_store_call(stopping, store.start_claimed, execution)
