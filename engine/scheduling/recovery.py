"""What `Scheduler.start()` does before the first fire: rebuild state from the store.

Another live node's executions are its own and left alone. Of the rest (this node's
earlier life, nodes whose lease has passed, records written by no node):
1. Runs that started and never finished: whatever they left running (child processes
   that outlived the service) is killed first, through the `kill_leftovers` the
   service passes in, and then they are marked `abandoned` (`abandon_running`); every
   written execution thus reaches a terminal status, and each is announced on the
   event bus (`execution_failed`, status abandoned) once the engine starts, so a
   job's `notify` and the other listeners hear of it.
2. Fires claimed but never started are taken over (`take_over`: those left `queued`,
   less any whose start a dead process's start journal holds, engine/running/journal.py,
   which are abandoned as in 1; so `queued` here means "never started") with a note
   in their output, and judged as a late fire is (engine/scheduling/takeover.py): run
   again now with the same execution id, or recorded `missed` beyond the misfire
   grace, or `cancelled` when the job was paused meanwhile. No new execution is made
   for such a fire, so it runs at most once and is recorded exactly once, and a one-off
   job, whose next_run_time the claim already cleared, is never left without its run
   or its record.
3. Every active job with a next_run_time goes on the heap, read a page of records at
   a time (`load_jobs`). Fire times that passed while
   the service was down are due at once, so the first step applies the misfire policy
   to them (run, coalesce, or record as missed). A one-shot date job that already fired
   has next_run_time None and stays off the heap: it never runs again.
4. Retries stored as `scheduled` go back on the heap at their scheduled_for (late ones
   run at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine import events as ev
from engine.events import EventBus
from engine.gcpause import BULK_ITEMS, paused_gc
from engine.interfaces import SchedulerStore
from engine.model import Execution, Status
from engine.running.pool import WorkItem
from engine.scheduling.takeover import judge_unstarted, requeue_note
from engine.scheduling.timetable import (
    RECORD_FIELDS,
    ROW_OBSERVED_FIELDS,
    RowObserver,
    Timetable,
)

log = logging.getLogger(__name__)
ABANDONED_MESSAGE = "cronwell stopped while this execution was running"
PAGE = 1000
#: job records per store read while loading every job
LOAD_PAGE = 2000

#: kills what runs of a stopped process left behind, given their execution ids, and
#: returns how many processes it stopped (the service passes runners' own)
KillLeftovers = Callable[[Collection[str]], int]
#: sees a stored job's record during the start-up load (which ones: `load_jobs`)
JobObserver = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Recovery:
    abandoned: int
    jobs: int
    retries: int
    #: unstarted fires to run again now (the scheduler hands them to the pool)
    requeued: tuple[WorkItem, ...] = ()
    #: unstarted fires recorded `missed` (beyond their grace) or `cancelled`
    ended: tuple[Execution, ...] = ()
    #: processes left running by the previous process's runs, killed
    killed: int = 0
    #: journaled starts of dead processes whose fires a node still alive by its lease
    #: holds: when a sweep takes those over later, these started and are abandoned
    journaled: frozenset[str] = field(default_factory=frozenset)
    #: the executions marked abandoned, as written (announced when the engine starts)
    abandoned_runs: tuple[Execution, ...] = ()


def recover(
    store: SchedulerStore,
    timetable: Timetable,
    now: datetime,
    kill_leftovers: KillLeftovers | None = None,
    started: Collection[str] = frozenset(),
    node_id: str | None = None,
    observers: Sequence[JobObserver] = (),
    observed_fields: Sequence[str] = (),
    due_by: datetime | None = None,
) -> Recovery:
    """Rebuild `timetable` from `store` as of `now` (see the module docstring);
    `started` are the ids of runs a dead process's start journal says it started,
    `node_id` is this node's name (None: an engine that is no node), and `observers`
    see every stored job's record (with at least `observed_fields`) as it is loaded;
    with `due_by` (a load window's start), only the jobs due by then are loaded."""
    nodes = store.list_nodes()
    live = [n.node_id for n in nodes if n.alive(now) and n.node_id != node_id]
    dead = [n.node_id for n in nodes if n.node_id not in live and n.node_id != node_id]
    unstarted: list[Execution] = []
    for source in dict.fromkeys((None, node_id, *dead)):
        unstarted += store.take_over(source, node_id, requeue_note(now, source))
    # started just before the crash, their running mark not yet stored: abandoned too
    begun = [e for e in unstarted if e.id in started]
    unstarted = [e for e in unstarted if e.id not in started]
    killed = 0
    if kill_leftovers is not None:
        running = [e for e in _every(store, Status.RUNNING) if e.node not in live]
        left = {e.id for e in running} | {e.id for e in begun}
        if left:
            killed = kill_leftovers(left)
    marked = store.abandon_running(now, ABANDONED_MESSAGE, keep_nodes=live)
    abandon_begun(store, begun, now, ABANDONED_MESSAGE)
    marked += begun
    abandoned = len(marked)
    requeued, ended = judge_unstarted(store, unstarted, now)
    timetable.clear()
    jobs = load_jobs(store, timetable, observers, observed_fields, due_by)
    retries = 0
    for execution in _every(store, Status.SCHEDULED):
        if execution.scheduled_for is None:
            log.warning("scheduled execution %s has no scheduled_for; skipped", execution.id)
            continue
        timetable.put_retry(execution)
        retries += 1
    log.info(
        "recovered %d scheduled job(s)%s and %d retry(ies); %d execution(s) abandoned "
        "(%d leftover process(es) killed); %d unstarted fire(s) queued again, %d ended",
        jobs,
        "" if due_by is None else f" due by {due_by.isoformat()} (the load window)",
        retries,
        abandoned,
        killed,
        len(requeued),
        len(ended),
    )
    taken = {e.id for e in begun} | {e.id for e in unstarted}
    return Recovery(
        abandoned,
        jobs,
        retries,
        tuple(requeued),
        tuple(ended),
        killed,
        frozenset(started) - taken,
        tuple(marked),
    )


def load_jobs(
    store: SchedulerStore,
    timetable: Timetable,
    observers: Sequence[JobObserver] = (),
    observed_fields: Sequence[str] = (),
    due_by: datetime | None = None,
) -> int:
    """Put every stored job that will fire on the heap; return how many. With `due_by`
    (a load window's start, engine/scheduling/window.py) only those due by then, and
    the rows read are the store's `job_rows(due_by=...)`: those jobs and the ones the
    observers learn from.

    Streamed a page at a time: a million jobs are never in memory as Jobs, only as the
    timetable's slots. When the observers want no more than `ROW_OBSERVED_FIELDS`
    (the service's do), the store's rows (`SchedulerStore.job_rows`) are read and
    each slot is built straight from its row, and the observers see the record of
    each job whose observed fields hold a value, the only ones they learn from;
    otherwise records with the timetable's fields (`RECORD_FIELDS`) and the
    `observed_fields` are read, and the observers see every one. Observing during
    the load lets the service learn retention limits and notification targets from
    this pass instead of loading every job again.
    """
    # Building the heap allocates long-lived objects and no cyclic garbage: pausing the
    # cyclic GC (as the stores do for bulk decoding) keeps the collector from
    # re-traversing them (a fifth of start-up); each page is freed by reference
    # counting as the next one is read.
    with paused_gc(BULK_ITEMS):
        if set(observed_fields) <= set(ROW_OBSERVED_FIELDS):
            return timetable.put_rows(store.job_rows(LOAD_PAGE, due_by), _each(observers))
        return timetable.put_records(_observed(store, observers, observed_fields))


def _each(observers: Sequence[JobObserver]) -> RowObserver | None:
    """One observer that shows a record to each of `observers` (None: there are none)."""
    if not observers:
        return None

    def observe(record: dict[str, Any]) -> None:
        for observer in observers:
            observer(record)

    return observe


def _observed(
    store: SchedulerStore, observers: Sequence[JobObserver], observed_fields: Sequence[str]
) -> Iterator[Mapping[str, Any]]:
    """Every stored job's record with the fields the timetable and the observers read,
    each shown to the observers."""
    wanted = tuple(dict.fromkeys((*RECORD_FIELDS, *observed_fields)))
    for page in store.job_records(LOAD_PAGE, wanted):
        for record in page:
            for observe in observers:
                observe(record)
            yield record


def abandon_begun(
    store: SchedulerStore, begun: list[Execution], now: datetime, message: str
) -> int:
    """Record as abandoned the taken-over fires a journal says had started."""
    for execution in begun:
        execution.output = execution.output.rsplit("[cronwell] queued again", 1)[0]
        execution.status, execution.completed_at = Status.ABANDONED, now
        execution.error = message
        store.update_execution(execution)
    return len(begun)


def announce_abandoned(events: EventBus, abandoned: Iterable[Execution], now: datetime) -> None:
    """Tell listeners of each execution marked abandoned (the notifier sends what a
    job's `notify` asks for, the event stream and the logs show it), as an
    `execution_failed` whose status says abandoned, like any other unhappy end."""
    for execution in abandoned:
        events.emit(ev.EXECUTION_FAILED, execution.job_id, now, execution=execution)


def _every(store: SchedulerStore, status: Status) -> list[Execution]:
    found: list[Execution] = []
    while True:
        page = store.list_executions(status=status, limit=PAGE, offset=len(found))
        found.extend(page)
        if len(page) < PAGE:
            return found
