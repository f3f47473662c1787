"""Turning due heap entries into claimed, recorded, dispatched executions.

One step takes every due job (in batches of `BATCH`), asks the policy what each due fire
becomes (run, missed), applies the backlog limit (run -> skipped) and, while max_instances executions of
the job are active, its overlap policy (engine/scheduling/overlap.py: skipped, held
until one ends, or replacing them),
claims all of them in one `Store.claim_fires` call, loads their jobs with one
`Store.get_jobs` call (so workers need not read the store), and hands the won runs to
the pool straight away (after emitting their events, so a worker's events follow them);
rescheduling comes after, off the dispatch path. A lost claim
(another engine, or a modify) reloads the job from the store. A store failure never
escapes, and what it means is decided in engine/running/backoff.py: a StoreError has
the batch revisited after a growing backoff; anything else is a bug, logged once with
its traceback, and the fires are recorded `failed` with the error, never retried.

The loop thread also passes a `lead`: fires due within it are claimed and handed to a
worker early, with `WorkItem.not_before` set to their due time; they are judged by the
misfire policy at that due time, and the worker starts them exactly then.

Due retries are marked `queued` and dispatched the same way (they are not limited by
max_instances: they continue a fire that was already admitted).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from engine import events as ev
from engine.errors import JobNotFound
from engine.events import EventBus
from engine.interfaces import FireClaim, Outcome, SchedulerStore
from engine.model import Execution, Status
from engine.records import new_execution
from engine.running.backoff import StoreBackoff, failure_text, is_transient
from engine.running.executor import SHUT_DOWN_BEFORE_START
from engine.running.pool import WorkerPool, WorkItem
from engine.scheduling import overlap
from engine.scheduling.policy import FirePlan, plan_fires
from engine.scheduling.timetable import JobSlot, Timetable

log = logging.getLogger(__name__)
BATCH = 64


@dataclass(slots=True)
class _Fire:
    """One job's share of a batch: its plan and the records it produces."""

    slot: JobSlot
    plan: FirePlan
    records: list[Execution] = field(default_factory=list)
    #: (event kind, execution) to emit once the claim is won
    notices: list[tuple[str, Execution]] = field(default_factory=list)
    queued: list[WorkItem] = field(default_factory=list)
    #: overlap=queue: the run held until a running one of its job ends
    held: list[WorkItem] = field(default_factory=list)
    #: overlap=replace: the job's active items to cancel once the claim is won, and why
    replaced: list[tuple[WorkItem, str]] = field(default_factory=list)


class Firer:
    def __init__(
        self,
        store: SchedulerStore,
        timetable: Timetable,
        pool: WorkerPool,
        events: EventBus,
        record: Callable[[WorkItem, Outcome], object],
        *,
        node: str | None = None,
    ) -> None:
        self._store = store
        self._node = node
        #: True while other live nodes share the store: max_instances then counts their
        #: queued and running executions too (set by the node keeper)
        self.shared: Callable[[], bool] = lambda: False
        self._shared_counts: dict[str, int] = {}
        self._timetable = timetable
        self._pool = pool
        self._events = events
        #: `Executor.record`: how an execution that never reached a worker is ended
        self._record = record
        self._backoff = StoreBackoff()
        #: the earliest due time of each batch handed to workers ahead of its time, in
        #: arming order (the loop drops those passed: engine/scheduling/collector.py)
        self.armed_from: deque[float] = deque(maxlen=4096)
        #: how many due entries the next batch may take, asked before each (the loop
        #: thread's: it steps aside for armed fires first, engine/running/wakes.py)
        self.pace: Callable[[int], int] | None = None

    def waiting(self) -> int:
        """Handed-over fires no worker has taken yet."""
        return self._pool.backlog_count

    def fire_due(self, now: datetime, lead: float = 0.0) -> int:
        """Fire everything due at `now`, and arm what falls due within `lead` seconds:
        those are claimed and handed to a worker now, and the worker starts them at
        their due time (see `WorkItem.not_before`). Returns how many entries it took."""
        horizon = now.timestamp() + lead
        taken = 0
        while True:
            jobs: list[JobSlot] = []
            retries: list[Execution] = []
            limit = BATCH
            if self.pace is not None:
                head = self._timetable.next_fire_ts()
                if head is None or head > horizon:
                    return taken
                limit = self.pace(BATCH)
            while len(jobs) + len(retries) < limit:
                due = self._timetable.pop_due(horizon)
                if due is None:
                    break
                if isinstance(due, JobSlot):
                    jobs.append(due)
                else:
                    retries.append(due)
            if not jobs and not retries:
                return taken
            taken += len(jobs) + len(retries)
            if jobs:
                self._fire_jobs(jobs, now)
            for retry in retries:
                self._fire_retry(retry, now)

    # -- scheduled fires -------------------------------------------------------------
    def _fire_jobs(self, slots: list[JobSlot], now: datetime) -> None:
        fires: list[_Fire] = []
        room = self._pool.room()
        self._shared_counts = self._count_shared()
        for slot in slots:
            due = slot.next_run_time
            try:
                plan = plan_fires(
                    slot.trigger,
                    due,
                    max(now, due),  # an armed fire is judged at its due time
                    grace=slot.misfire_grace_time,
                    coalesce=slot.coalesce,
                )
            except Exception:
                log.exception("trigger of job %s failed; the job will not fire again", slot.id)
                self._timetable.drop_job(slot.id)
                continue
            if not plan.runs and not plan.missed:  # woke a hair early (float rounding)
                self._timetable.move(slot, plan.next_run_time)
                continue
            fire = _Fire(slot, plan)
            room = self._admit(fire, now, room)
            fires.append(fire)
        if not fires:
            return
        claims = [
            FireClaim(f.slot.id, f.slot.next_run_time, f.plan.next_run_time, f.records)
            for f in fires
        ]
        try:
            won = self._store.claim_fires(claims)
        except Exception as exc:
            delay = self._backoff.failed(exc, f"claiming {len(claims)} fire(s)")
            if delay is None:
                self._claim_failed(fires, now, exc)
                return
            for f in fires:
                self._timetable.look_again(f.slot, now.timestamp() + delay)
            return
        self._backoff.succeeded()
        items = [item for f, ok in zip(fires, won, strict=True) if ok for item in f.queued]
        held = [item for f, ok in zip(fires, won, strict=True) if ok for item in f.held]
        self._hand_jobs(items + held)
        # events go on the bus before the hand-off, so a worker's own (started, ended)
        # always follow its fire's execution_submitted, whose snapshot still says queued;
        # with no listener this is a loop of set lookups
        for f, ok in zip(fires, won, strict=True):
            if ok:
                for kind, execution in f.notices:
                    self._events.emit(kind, f.slot.id, now, execution=execution)
        for f, ok in zip(fires, won, strict=True):
            if ok:
                self._replace(f.replaced)
        self._dispatch(items)
        for item in held:
            for refused in self._pool.hold([item]):  # the pool stopped since the claim
                self._record(refused, Outcome(Status.CANCELLED, error=SHUT_DOWN_BEFORE_START))
        for f, ok in zip(fires, won, strict=True):
            if ok:
                self._timetable.move(f.slot, f.plan.next_run_time)
            else:
                self._reload(f.slot, now)

    def _count_shared(self) -> dict[str, int]:
        """Every node's queued and running executions per job, when others are alive
        (one store read per batch of due fires; nothing to read on a lone node)."""
        if not self.shared():
            return {}
        try:
            return self._store.count_active()
        except Exception as exc:
            log.warning("counting other nodes' executions failed (%s); this node's own", exc)
            return {}

    def _claim_failed(self, fires: list[_Fire], now: datetime, exc: Exception) -> None:
        """A claim raised a bug (not a StoreError): never retried. Each fire is claimed
        again on its own with its runs recorded `failed` with the error instead of
        queued (so a bug in the batch write alone still lets the records land) and the
        job moves on to its next fire; a fire whose claim fails again is dropped from
        the heap until the job changes or the service restarts."""
        error = f"the store failed while claiming this fire: {failure_text(exc)}"
        for f in fires:
            for record in f.records:
                if record.status == Status.QUEUED:
                    record.status, record.completed_at, record.error = Status.FAILED, now, error
            try:
                won = self._store.claim_fire(
                    f.slot.id, f.slot.next_run_time, f.plan.next_run_time, f.records
                )
            except Exception:
                log.exception("recording the failed fire of job %s failed too; dropped", f.slot.id)
                self._timetable.drop_job(f.slot.id)
                continue
            if not won:
                self._reload(f.slot, now)
                continue
            self._timetable.move(f.slot, f.plan.next_run_time)
            for record in f.records:
                kind = ev.EXECUTION_FAILED if record.status == Status.FAILED else ev.JOB_MISSED
                self._events.emit(kind, f.slot.id, now, execution=record)

    def _hand_jobs(self, items: list[WorkItem]) -> None:
        """Load the jobs of won fires with one store call, so workers start them
        without reading the store (a worker loads its job itself when this fails)."""
        if not items:
            return
        try:
            jobs = self._store.get_jobs(list({item.execution.job_id: None for item in items}))
        except Exception as exc:
            log.warning(
                "loading %d job(s) for their fires failed (%s); workers will",
                len(items),
                exc,
                exc_info=None if is_transient(exc) else exc,  # a bug: with its traceback
            )
            return
        for item in items:
            item.job = jobs.get(item.execution.job_id)

    def _admit(self, fire: _Fire, now: datetime, room: int) -> int:
        """Fill `fire.records`: missed fires, then runs that fit (queued) or not (skipped)."""
        slot, plan = fire.slot, fire.plan
        for when, error in plan.missed:
            record = new_execution(
                slot,
                slot.kind,
                Status.MISSED,
                now,
                scheduled_for=when,
                error=error,
                node=self._node,
            )
            fire.records.append(record)
            fire.notices.append((ev.JOB_MISSED, record))
        active = max(self._pool.instances(slot.id), self._shared_counts.get(slot.id, 0))
        for when in plan.runs:
            decision = ""
            kind = ev.JOB_MISSED
            if room <= 0:
                error = self._pool.full_error
            elif active < slot.max_instances:
                error = ""
                if active:
                    decision = overlap.allowed(active, slot.max_instances)
            elif slot.overlap == "replace" and not fire.replaced:
                active_items = self._pool.active_items(slot.id)
                record = self._record_run(fire, when, now, overlap.replaced(active_items))
                fire.queued.append(WorkItem(record, not_before=when.timestamp()))
                fire.replaced = [(item, overlap.replaced_by(record.id)) for item in active_items]
                room -= 1
                continue
            elif slot.overlap == "queue" and not fire.held and not self._pool.waiting(slot.id):
                record = self._record_run(fire, when, now, overlap.queued(active))
                fire.held.append(WorkItem(record, not_before=when.timestamp()))
                continue
            else:
                error = overlap.skipped(slot.overlap, active, slot.max_instances)
                decision = error
                kind = ev.MAX_INSTANCES_REACHED
            if not error:
                record = self._record_run(fire, when, now, decision)
                fire.queued.append(WorkItem(record, not_before=when.timestamp()))
                active += 1
                room -= 1
                continue
            record = new_execution(
                slot,
                slot.kind,
                Status.SKIPPED,
                now,
                scheduled_for=when,
                output=plan.note,  # a coalesced fire skipped still says what it stood for
                error=error,
                node=self._node,
            )
            record.overlap_decision = decision
            fire.records.append(record)
            fire.notices.append((kind, record))
        return room

    def _record_run(self, fire: _Fire, when: datetime, now: datetime, decision: str) -> Execution:
        """A queued execution of one of `fire`'s runs, recorded and announced."""
        record = new_execution(
            fire.slot,
            fire.slot.kind,
            Status.QUEUED,
            now,
            scheduled_for=when,
            output=fire.plan.note,
            node=self._node,
        )
        record.overlap_decision = decision
        fire.records.append(record)
        fire.notices.append((ev.EXECUTION_SUBMITTED, record))
        return record

    def _replace(self, items: list[tuple[WorkItem, str]]) -> None:
        """overlap=replace: stop the executions a new run replaces. Queued ones are
        withdrawn and recorded cancelled here; running ones are asked to stop and their
        worker records them cancelled, naming the reason."""
        for item, reason in items:
            taken = self._pool.take_queued(item.execution.id)
            if taken is not None:
                self._record(taken, Outcome(Status.CANCELLED, error=reason))
                continue
            item.cancel_reason = reason
            if not item.withdraw(reason):  # already running: stop it
                item.cancel.set()

    def _reload(self, slot: JobSlot, now: datetime) -> None:
        """A lost claim: the store knows better; schedule what it says."""
        try:
            job = self._store.get_job(slot.id)
        except JobNotFound:
            self._timetable.drop_job(slot.id)
            return
        except Exception as exc:
            delay = self._backoff.failed(exc, f"reloading job {slot.id}")
            if delay is None:  # a bug: the job stays off the heap until it changes
                self._timetable.drop_job(slot.id)
                return
            self._timetable.look_again(slot, now.timestamp() + delay)
            return
        self._timetable.put_job(job)

    # -- retries ---------------------------------------------------------------------
    def _fire_retry(self, retry: Execution, now: datetime) -> None:
        if self._pool.room() <= 0:
            self._record(WorkItem(retry), Outcome(Status.SKIPPED, error=self._pool.full_error))
            return
        retry.status = Status.QUEUED
        retry.node = self._node
        try:
            self._store.update_execution(retry)
        except Exception as exc:
            delay = self._backoff.failed(exc, f"queueing retry {retry.id}")
            if delay is None:  # a bug: the retry ends failed instead of spinning
                error = f"the store failed while queueing this retry: {failure_text(exc)}"
                self._record(WorkItem(retry), Outcome(Status.FAILED, error=error))
                return
            retry.status = Status.SCHEDULED
            self._timetable.put_retry(retry, now.timestamp() + delay)
            return
        due = retry.scheduled_for
        self._events.emit(ev.EXECUTION_SUBMITTED, retry.job_id, now, execution=retry)
        self._dispatch([WorkItem(retry, not_before=due.timestamp() if due else 0.0)])

    def _dispatch(self, items: list[WorkItem]) -> None:
        if not items:
            return
        taken = self._pool.submit(items)
        if taken and items[0].not_before:
            self.armed_from.append(items[0].not_before)
        for item in items[taken:]:  # the pool stopped between claim and submit
            self._record(item, Outcome(Status.CANCELLED, error=SHUT_DOWN_BEFORE_START))
