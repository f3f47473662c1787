"""Fires a stopped process claimed and never started: judged and handed to the workers.

Two paths take such fires over, both through `SchedulerStore.take_over` (each fire is
taken by one node, once): recovery at start (this node's earlier life, nodes whose
lease has passed, records of no node) and a live node's sweep of a node whose lease
passes while it runs (engine/cluster.py, then `RunTakenOver` on the loop). Both judge
each fire the same way here: within its job's misfire grace (or a manual run, or a
retry) it runs again with the same execution id; beyond the grace it is recorded
`missed`; a scheduled fire of a job paused meanwhile is `cancelled`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from engine import events as ev
from engine.events import EventBus
from engine.interfaces import Outcome, SchedulerStore
from engine.model import Execution, Job, Status
from engine.running.pool import WorkerPool, WorkItem
from engine.scheduling.policy import too_late

PAUSED_BEFORE_START = "the job was paused before this execution started"


def requeue_note(now: datetime, node: str | None = None) -> str:
    """The line a taken-over execution's output gets (naming the node that stopped)."""
    who = "cronwell" if node is None else f"node {node}"
    return f"[cronwell] queued again at {now.isoformat()}: claimed before {who} stopped, never started\n"


def judge_unstarted(
    store: SchedulerStore, unstarted: Iterable[Execution], now: datetime
) -> tuple[list[WorkItem], list[Execution]]:
    """(fires to run again now, fires ended without running): the ended ones are
    written to the store here; a job that is gone is the worker's to record."""
    unstarted = list(unstarted)
    if not unstarted:
        return [], []
    jobs = store.get_jobs(list({e.job_id: None for e in unstarted}))
    requeued: list[WorkItem] = []
    ended: list[Execution] = []
    for execution in unstarted:
        job = jobs.get(execution.job_id)
        error = _why_not(execution, job, now)
        if not error:
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


def hand_over(
    pool: WorkerPool,
    record: Callable[[WorkItem, Outcome], object],
    events: EventBus,
    requeued: list[WorkItem],
    ended: Iterable[Execution],
    now: datetime,
) -> None:
    """Queue the fires to run again (a backlog too small for them records the rest
    `skipped`) and tell listeners what became of each fire."""
    taken = pool.submit(requeued)
    for item in requeued[taken:]:
        record(item, Outcome(Status.SKIPPED, error=pool.full_error))
    for item in requeued[:taken]:
        execution = item.execution
        events.emit(ev.EXECUTION_SUBMITTED, execution.job_id, now, execution=execution)
    for execution in ended:
        kind = ev.JOB_MISSED if execution.status == Status.MISSED else ev.EXECUTION_FAILED
        events.emit(kind, execution.job_id, now, execution=execution)
