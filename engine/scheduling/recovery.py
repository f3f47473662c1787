"""What `Scheduler.start()` does before the first fire: rebuild state from the store.

1. On a node (the service always is one), fires claimed but never started (`queued`)
   by this node's earlier life, by nodes whose lease has passed, or by no node, are
   taken over: the scheduler runs each once its workers are up, or records it `missed`
   when past its misfire grace. Executions left `running` by them are marked
   `abandoned` (they can never finish now). Executions of other live nodes are theirs
   and left alone. Every written execution thus reaches a terminal status. An engine
   that is no node (tests, benchmarks) abandons every queued and running execution.
2. Every active job with a next_run_time goes on the heap. Fire times that passed while
   the service was down are due at once, so the first step applies the misfire policy
   to them (run, coalesce, or record as missed). A one-shot date job that already fired
   has next_run_time None and stays off the heap: it never runs again.
3. Retries stored as `scheduled` go back on the heap at their scheduled_for (late ones
   run at once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from engine.gcpause import BULK_ITEMS, paused_gc
from engine.interfaces import SchedulerStore
from engine.model import Execution, Status
from engine.scheduling.timetable import Timetable

log = logging.getLogger(__name__)
ABANDONED_MESSAGE = "cronwell stopped while this execution was running"
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Recovery:
    abandoned: int
    jobs: int
    retries: int
    #: queued executions this node took over, by the node that had claimed them (None:
    #: written by no node); the scheduler runs them once its workers are up
    taken_over: tuple[tuple[str | None, tuple[Execution, ...]], ...] = ()


def recover(
    store: SchedulerStore, timetable: Timetable, now: datetime, node_id: str | None = None
) -> Recovery:
    """Rebuild `timetable` from `store` as of `now` (see the module docstring).

    Executions of other nodes still alive are theirs: only those of this node's earlier
    life, of nodes whose lease has passed, and of no node at all are abandoned."""
    nodes = store.list_nodes()
    live = [n.node_id for n in nodes if n.alive(now) and n.node_id != node_id]
    taken_over: list[tuple[str | None, tuple[Execution, ...]]] = []
    if node_id is not None:  # a node takes over fires claimed and never started
        dead = [n.node_id for n in nodes if n.node_id not in live and n.node_id != node_id]
        for source in (None, node_id, *dead):
            taken = store.take_over(source, node_id)
            if taken:
                taken_over.append((source, tuple(taken)))
    abandoned = store.abandon_running(now, ABANDONED_MESSAGE, keep_nodes=live)
    timetable.clear()
    # Building the heap from every stored job allocates hundreds of thousands of
    # long-lived objects and no garbage: pausing the cyclic GC (as the stores do for
    # bulk decoding) keeps the collector from re-traversing them (a fifth of start-up).
    with paused_gc(BULK_ITEMS):
        jobs = sum(1 for job in store.list_jobs() if timetable.put_job(job) is not None)
    retries = 0
    offset = 0
    while True:
        page = store.list_executions(status=Status.SCHEDULED, limit=PAGE, offset=offset)
        for execution in page:
            if execution.scheduled_for is None:
                log.warning("scheduled execution %s has no scheduled_for; skipped", execution.id)
                continue
            timetable.put_retry(execution)
            retries += 1
        if len(page) < PAGE:
            break
        offset += PAGE
    log.info(
        "recovered %d scheduled job(s) and %d retry(ies); %d execution(s) abandoned",
        jobs,
        retries,
        abandoned,
    )
    return Recovery(abandoned, jobs, retries, tuple(taken_over))
