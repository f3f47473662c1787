"""What `Scheduler.start()` does before the first fire: rebuild state from the store.

1. Runs a previous process started and never finished: whatever they left running
   (child processes that outlived the service) is killed first, through the
   `kill_leftovers` the service passes in, and then they are marked `abandoned`
   (`Store.abandon_running`); every written execution thus reaches a terminal status.
2. Fires the previous process claimed but never started are taken over
   (`Store.take_unstarted`: those left `queued`, less any whose start the process's
   start journal holds, engine/running/journal.py, which are abandoned as in 1; so
   `queued` here means "never started") with a note in their output saying so, and each
   is judged as a late fire is: within its job's misfire grace (or a manual run, or a
   retry) it runs again now, with the same execution id; beyond the grace it is
   recorded `missed`; a scheduled fire of a job paused meanwhile is `cancelled`. No
   new execution is made for such a fire, so it runs at most once and is recorded
   exactly once, and a one-off job, whose next_run_time the claim already cleared,
   is never left without its run or its record.
3. Every active job with a next_run_time goes on the heap. Fire times that passed while
   the service was down are due at once, so the first step applies the misfire policy
   to them (run, coalesce, or record as missed). A one-shot date job that already fired
   has next_run_time None and stays off the heap: it never runs again.
4. Retries stored as `scheduled` go back on the heap at their scheduled_for (late ones
   run at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from engine.gcpause import BULK_ITEMS, paused_gc
from engine.interfaces import SchedulerStore
from engine.model import Execution, Job, Status
from engine.running.pool import WorkItem
from engine.scheduling.policy import too_late
from engine.scheduling.timetable import Timetable

log = logging.getLogger(__name__)
ABANDONED_MESSAGE = "cronwell stopped while this execution was running"
PAUSED_BEFORE_START = "the job was paused before this execution started"
PAGE = 1000

#: kills what runs of a stopped process left behind, given their execution ids, and
#: returns how many processes it stopped (the service passes runners' own)
KillLeftovers = Callable[[Collection[str]], int]


def requeue_note(now: datetime) -> str:
    """The line an unstarted execution's output gets when recovery takes it over."""
    return (
        f"[cronwell] queued again at {now.isoformat()}: claimed before cronwell stopped, "
        "never started\n"
    )


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


def recover(
    store: SchedulerStore,
    timetable: Timetable,
    now: datetime,
    kill_leftovers: KillLeftovers | None = None,
    started: Collection[str] = frozenset(),
) -> Recovery:
    """Rebuild `timetable` from `store` as of `now` (see the module docstring);
    `started` are the ids of runs a dead process's start journal says it started."""
    note = requeue_note(now)
    unstarted = store.take_unstarted(now, note)
    # started just before the crash, their running mark not yet stored: abandoned too
    begun = [e for e in unstarted if e.id in started]
    unstarted = [e for e in unstarted if e.id not in started]
    killed = 0
    if kill_leftovers is not None:
        left = {e.id for e in _every(store, Status.RUNNING)} | {e.id for e in begun}
        if left:
            killed = kill_leftovers(left)
    abandoned = store.abandon_running(now, ABANDONED_MESSAGE) + len(begun)
    for execution in begun:
        execution.output = execution.output.removesuffix(note)
        execution.status, execution.completed_at = Status.ABANDONED, now
        execution.error = ABANDONED_MESSAGE
        store.update_execution(execution)
    requeued, ended = _judge_unstarted(store, unstarted, now)
    timetable.clear()
    # Building the heap from every stored job allocates hundreds of thousands of
    # long-lived objects and no garbage: pausing the cyclic GC (as the stores do for
    # bulk decoding) keeps the collector from re-traversing them (a fifth of start-up).
    with paused_gc(BULK_ITEMS):
        jobs = sum(1 for job in store.list_jobs() if timetable.put_job(job) is not None)
    retries = 0
    for execution in _every(store, Status.SCHEDULED):
        if execution.scheduled_for is None:
            log.warning("scheduled execution %s has no scheduled_for; skipped", execution.id)
            continue
        timetable.put_retry(execution)
        retries += 1
    log.info(
        "recovered %d scheduled job(s) and %d retry(ies); %d execution(s) abandoned "
        "(%d leftover process(es) killed); %d unstarted fire(s) queued again, %d ended",
        jobs,
        retries,
        abandoned,
        killed,
        len(requeued),
        len(ended),
    )
    return Recovery(abandoned, jobs, retries, tuple(requeued), tuple(ended), killed)


def _every(store: SchedulerStore, status: Status) -> list[Execution]:
    found: list[Execution] = []
    while True:
        page = store.list_executions(status=status, limit=PAGE, offset=len(found))
        found.extend(page)
        if len(page) < PAGE:
            return found


def _judge_unstarted(
    store: SchedulerStore, unstarted: list[Execution], now: datetime
) -> tuple[list[WorkItem], list[Execution]]:
    """Judge each unstarted fire taken over: run it again, or end it."""
    if not unstarted:
        return [], []
    jobs = store.get_jobs(list({e.job_id: None for e in unstarted}))
    requeued: list[WorkItem] = []
    ended: list[Execution] = []
    for execution in unstarted:
        job = jobs.get(execution.job_id)
        error = _why_not(execution, job, now)
        if not error:
            # a job that is gone is the worker's to record (cancelled: JOB_GONE)
            requeued.append(WorkItem(execution, job))
            continue
        execution.status = Status.CANCELLED if error == PAUSED_BEFORE_START else Status.MISSED
        execution.completed_at = now
        execution.error = error
        store.update_execution(execution)
        ended.append(execution)
    return requeued, ended


def _why_not(execution: Execution, job: Job | None, now: datetime) -> str:
    """Why an unstarted execution must not run now ("" when it may)."""
    if job is None or execution.reason != "schedule" or execution.scheduled_for is None:
        return ""  # a manual run or a retry runs however late, as it would have
    if not job.active:
        return PAUSED_BEFORE_START
    return too_late(execution.scheduled_for, now, job.misfire_grace_time)
