"""What the loop keeps in memory: a small slot per scheduled job, and scheduled retries.

Memory per job is a measured target, so the loop does not hold whole `Job`s: a
`JobSlot` carries only what deciding and recording a fire needs (trigger, next fire time,
misfire/coalesce/max_instances/overlap, and the labels every Execution repeats). Workers load
the full Job from the store when they run it. Only jobs that will fire have a slot:
paused, disabled and finished jobs live in the store alone, and so, with a load
window (engine/scheduling/window.py), do jobs due past its edge (`horizon_ts`).

Strings shared by many jobs (the target, the owner) are interned, and equal triggers
share one object (triggers are immutable values), so 100,000 jobs on a handful of cron
expressions hold a handful of trigger objects. Equal fire times share one datetime and
one heap timestamp too (100,000 jobs on 1,440 daily expressions have 1,440 distinct next
fire times); `share` applies both to a Job before the store copies it, so the store's
copy shares them as well (about 110 B per cron job).

Owned by the loop thread; not thread-safe.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from sys import intern
from typing import Any

from engine.interfaces import JOB_ROW_FIELDS, JOB_SLOT_FIELDS, Trigger
from engine.model import Execution, Job, JobKind, as_utc
from engine.scheduling.heap import TimerHeap
from engine.triggers import trigger_from_dict

log = logging.getLogger(__name__)

#: heap key of a scheduled retry; job keys are the job ids themselves
RetryKey = tuple[str, str]
#: stop sharing triggers past this many distinct ones (bounds the intern table)
TRIGGER_INTERN_LIMIT = 10_000
#: distinct fire times kept for sharing; the table starts afresh when it is full
TIME_INTERN_LIMIT = 10_000
#: jobs left out of one load (their trigger or time no longer parses) named in the log;
#: the rest are counted, so a fleet sharing one bad trigger is not a line per job
LEFT_OUT_LOGGED = 20
#: a job record's missing fields read as the Job's defaults (as `Job.from_record` does)
JOB_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Job) if f.default is not MISSING}
#: the Job fields `put_record` reads: what the start-up load asks the store for
RECORD_FIELDS = JOB_SLOT_FIELDS
#: the fields of a job's record `put_rows` shows its observer, with the id
ROW_OBSERVED_FIELDS = JOB_ROW_FIELDS[len(JOB_SLOT_FIELDS) :]
#: sees {id, history_limit, notify} of each loaded row that holds either (`put_rows`)
RowObserver = Callable[[dict[str, Any]], None]
#: a record's kind text -> the slot's (shared) kind string
_KIND_VALUES = {k.value: k.value for k in JobKind}
#: small values many jobs repeat (grace seconds, overlap words), one object each
_SHARED_VALUES: dict[Any, Any] = {}
SHARED_VALUES_LIMIT = 1000


class JobSlot:
    """The loop's compact view of one scheduled job."""

    __slots__ = (
        "coalesce",
        "id",
        "kind",
        "max_instances",
        "misfire_grace_time",
        "name",
        "next_run_time",
        "overlap",
        "owner",
        "target",
        "trigger",
    )

    def __init__(self, job: Job, trigger: Trigger, next_run_time: datetime) -> None:
        self.id = job.id
        self.name = job.name
        self.kind: str = job.kind.value
        self.target = intern(job.target)
        self.owner = None if job.owner is None else intern(job.owner)
        self.trigger = trigger
        self.next_run_time = next_run_time
        self.misfire_grace_time = job.misfire_grace_time
        self.coalesce = job.coalesce
        self.max_instances = job.max_instances
        self.overlap = job.overlap

    @classmethod
    def of_record(
        cls, record: Mapping[str, Any], trigger: Trigger, next_run_time: datetime
    ) -> JobSlot:
        """The slot `JobSlot(Job.from_record(record), ...)` would be, without building
        the Job: what the start-up load does for every stored job (building a Job of 29
        fields, most dropped at once, is the larger part of decoding one). Repeated
        small values are shared."""
        slot = cls.__new__(cls)
        get = record.get
        slot.id = record["id"]
        slot.name = record["name"]
        kind = record["kind"]
        slot.kind = _KIND_VALUES.get(kind) or JobKind(kind).value
        slot.target = intern(record["target"])
        owner = get("owner")
        slot.owner = None if owner is None else intern(owner)
        slot.trigger = trigger
        slot.next_run_time = next_run_time
        slot.misfire_grace_time = _shared(get("misfire_grace_time", _GRACE))
        slot.coalesce = get("coalesce", _COALESCE)
        slot.max_instances = get("max_instances", _MAX_INSTANCES)
        slot.overlap = _shared(get("overlap", _OVERLAP))
        return slot


_GRACE = JOB_DEFAULTS["misfire_grace_time"]
_COALESCE = JOB_DEFAULTS["coalesce"]
_MAX_INSTANCES = JOB_DEFAULTS["max_instances"]
_OVERLAP = JOB_DEFAULTS["overlap"]


def _shared(value: Any) -> Any:
    """One object for each equal small value (bounded; floats and strings only)."""
    try:
        known = _SHARED_VALUES.get(value)
    except TypeError:
        return value
    if known is not None and type(known) is type(value):
        return known
    if len(_SHARED_VALUES) < SHARED_VALUES_LIMIT and isinstance(value, (float, str)):
        _SHARED_VALUES[value] = value
    return value


class Timetable:
    """Slots of scheduled jobs, scheduled retries, and the heap that orders them."""

    def __init__(self) -> None:
        self.heap: TimerHeap[str | RetryKey] = TimerHeap()
        self.jobs: dict[str, JobSlot] = {}
        self.retries: dict[str, Execution] = {}
        self._triggers: dict[Any, Trigger] = {}
        #: a stored trigger dict's items -> its shared trigger (`_trigger_of`)
        self._specs: dict[tuple[Any, ...], Trigger] = {}
        #: fire time -> (the shared equal datetime, its timestamp)
        self._times: dict[datetime, tuple[datetime, float]] = {}
        #: jobs due after this timestamp get no slot: with a load window (engine/
        #: scheduling/window.py) they stay in the store until the window reaches them
        self.horizon_ts = math.inf

    def __len__(self) -> int:
        return len(self.heap)

    def share(self, job: Job) -> None:
        """Give `job` the shared objects equal to its trigger and next_run_time (same
        values), so every copy made of it from now on shares them too."""
        job.trigger = self._shared(job.trigger)
        if job.next_run_time is not None and job.trigger.kind != "date":
            job.next_run_time = self._time(job.next_run_time)[0]

    def put_job(self, job: Job) -> JobSlot | None:
        """Schedule `job` at its next_run_time, or forget it when it will not fire."""
        if job.next_run_time is None or not job.active:
            self.drop_job(job.id)
            return None
        trigger = self._shared(job.trigger)
        when, when_ts = self._time(job.next_run_time, trigger)
        if when_ts > self.horizon_ts:
            self.drop_job(job.id)
            return None
        slot = JobSlot(job, trigger, when)
        self.jobs[job.id] = slot
        self.heap.push(job.id, when_ts)
        return slot

    def put_record(self, record: Mapping[str, Any]) -> JobSlot | None:
        """`put_job` for a job's stored record (`SchedulerStore.job_records`)."""
        placed = self._slot_of(record)
        if placed is None:
            self.drop_job(record["id"])
            return None
        slot, when_ts = placed
        self.jobs[slot.id] = slot
        self.heap.push(slot.id, when_ts)
        return slot

    def put_records(self, records: Iterable[Mapping[str, Any]]) -> int:
        """`put_record` for each record; return how many were scheduled. The heap takes
        them in one `extend` (heapified once when they outnumber what it held: the
        start-up load), fed as they are made, so no second list of a million pairs is
        held beside the heap's; a record's slot is due only after this returns."""
        jobs, scheduled = self.jobs, 0

        def placed() -> Iterator[tuple[str, float]]:
            nonlocal scheduled
            for record in records:
                found = self._slot_of(record)
                if found is None:
                    self.drop_job(record["id"])
                    continue
                slot, when_ts = found
                jobs[slot.id] = slot
                scheduled += 1
                yield slot.id, when_ts

        self.heap.extend(placed())
        return scheduled

    def put_rows(
        self, pages: Iterable[Sequence[Sequence[Any]]], observe: RowObserver | None = None
    ) -> int:
        """`put_records` for pages of `SchedulerStore.job_rows` rows, in one loop that
        builds each slot straight from its row: no record per job, and each distinct
        trigger and time text parsed once (what a million-job start-up spends its
        time on). `observe` gets the record {id, history_limit, notify} of each row
        that holds either, notify parsed (what the service's observers read). A row
        due after the horizon is only observed. A row whose trigger or time no longer
        parses is logged and left out: one bad job must not keep the service from
        starting, nor the rest of its page out of memory."""
        jobs, shared, new_slot, horizon = self.jobs, _shared, JobSlot.__new__, self.horizon_ts
        # per-load caches of what rows repeat; graces shared as `_shared` does, without
        # its call per job (floats only: 60 and 60.0 are equal keys of other types)
        texts: dict[str, tuple[datetime, float]] = {}
        specs: dict[str, Trigger] = {}
        graces: dict[float, float] = {}
        #: trigger texts that failed to parse, and how (each is parsed once per load)
        unparsed: dict[str, Exception] = {}
        scheduled = left_out = 0

        def placed() -> Iterator[tuple[str, float]]:
            nonlocal scheduled, left_out
            for rows in pages:
                for (
                    job_id,
                    name,
                    kind,
                    target,
                    owner,
                    spec,
                    when,
                    enabled,
                    paused,
                    grace,
                    coalesce,
                    instances,
                    overlap,
                    limit,
                    notify,
                ) in rows:
                    if observe is not None and (limit is not None or notify is not None):
                        told = json.loads(notify) if type(notify) is str else notify
                        observe({"id": job_id, "history_limit": limit, "notify": told})
                    if when is None or not enabled or paused:
                        self.drop_job(job_id)
                        continue
                    trigger = None
                    try:  # a stored trigger or time that no longer parses: left out
                        if type(spec) is str:
                            trigger = specs.get(spec)
                            if trigger is None:
                                if spec in unparsed:
                                    raise unparsed[spec]
                                trigger = self._trigger_of(json.loads(spec))
                                if trigger.kind != "date":  # its own: not kept (`_trigger_of`)
                                    if len(specs) >= TRIGGER_INTERN_LIMIT:
                                        specs.clear()
                                    specs[spec] = trigger
                        else:
                            trigger = self._trigger_of(spec)
                        if type(when) is str:
                            timed = texts.get(when)
                            if timed is None:
                                timed = self._time(as_utc(datetime.fromisoformat(when)), trigger)
                                if trigger.kind != "date":  # its own time: not kept (`_time`)
                                    if len(texts) >= TIME_INTERN_LIMIT:
                                        texts.clear()
                                    texts[when] = timed
                        else:
                            timed = self._time(
                                when if when.tzinfo is UTC else as_utc(when), trigger
                            )
                    except Exception as exc:
                        # the trigger failed (not its time): a fleet sharing it is parsed once
                        if (
                            trigger is None
                            and type(spec) is str
                            and len(unparsed) < TRIGGER_INTERN_LIMIT
                        ):
                            unparsed[spec] = exc
                        left_out += 1
                        if left_out <= LEFT_OUT_LOGGED:
                            log.warning("job %s cannot be scheduled (%s); left out", job_id, exc)
                        self.drop_job(job_id)
                        continue
                    if timed[1] > horizon:
                        self.drop_job(job_id)
                        continue
                    slot = new_slot(JobSlot)
                    slot.id = job_id
                    slot.name = name
                    slot.kind = _KIND_VALUES.get(kind) or JobKind(kind).value
                    slot.target = intern(target)
                    slot.owner = None if owner is None else intern(owner)
                    slot.trigger = trigger
                    slot.next_run_time = timed[0]
                    slot.misfire_grace_time = (
                        graces.setdefault(grace, grace)
                        if type(grace) is float and len(graces) < SHARED_VALUES_LIMIT
                        else shared(grace)
                    )
                    slot.coalesce = bool(coalesce)
                    slot.max_instances = int(instances)
                    slot.overlap = intern(overlap)
                    jobs[job_id] = slot
                    scheduled += 1
                    yield job_id, timed[1]

        self.heap.extend(placed())
        if left_out > LEFT_OUT_LOGGED:
            log.warning(
                "%d jobs in all cannot be scheduled and were left out (the first %d named above)",
                left_out,
                LEFT_OUT_LOGGED,
            )
        return scheduled

    def _slot_of(self, record: Mapping[str, Any]) -> tuple[JobSlot, float] | None:
        """The slot of a record and its heap timestamp; None when it will not fire."""
        when = record.get("next_run_time")
        if when is None or not record.get("enabled", True) or record.get("paused", False):
            return None
        if when.tzinfo is not UTC:
            when = as_utc(when)
        trigger = self._trigger_of(record["trigger"])
        when, when_ts = self._time(when, trigger)
        if when_ts > self.horizon_ts:
            return None
        return JobSlot.of_record(record, trigger, when), when_ts

    def _trigger_of(self, spec: dict[str, Any]) -> Trigger:
        """The shared trigger of a stored trigger dict: looked up by the dict's items,
        which skips rebuilding it and hashing the trigger (a cron trigger's hash is a
        Python method: a tenth of a slot's cost at start, paid per job)."""
        try:
            key = tuple(spec.items())
            known = self._specs.get(key)
        except TypeError:  # an unhashable value: not remembered
            return self._shared(trigger_from_dict(spec))
        if known is None:
            known = self._shared(trigger_from_dict(spec))
            if known.kind == "date":  # nearly always its own: not kept (see _shared)
                return known
            if len(self._specs) >= TRIGGER_INTERN_LIMIT:
                self._specs.clear()
            self._specs[key] = known
        return known

    def move(self, slot: JobSlot, when: datetime | None) -> None:
        """Set a slot's next fire time (None: the job is done, drop it)."""
        if when is None:
            self.drop_job(slot.id)
            return
        slot.next_run_time, when_ts = self._time(when, slot.trigger)
        if when_ts > self.horizon_ts:  # the load window brings it back when it is near
            self.drop_job(slot.id)
            return
        self.jobs[slot.id] = slot
        self.heap.push(slot.id, when_ts)

    def look_again(self, slot: JobSlot, at_ts: float) -> None:
        """Revisit a slot at `at_ts` without changing its fire time (after a store error)."""
        self.jobs[slot.id] = slot
        self.heap.push(slot.id, at_ts)

    def drop_job(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is not None:
            self.heap.remove(job_id)

    def put_retry(self, execution: Execution, at_ts: float | None = None) -> None:
        """Schedule a retry at its scheduled_for (or revisit it at `at_ts`)."""
        when = execution.scheduled_for
        if when is None:
            raise ValueError(f"retry {execution.id} has no scheduled_for")
        self.retries[execution.id] = execution
        self.heap.push(("retry", execution.id), when.timestamp() if at_ts is None else at_ts)

    def drop_retry(self, execution_id: str) -> Execution | None:
        execution = self.retries.pop(execution_id, None)
        if execution is not None:
            self.heap.remove(("retry", execution_id))
        return execution

    def pop_due(self, now_ts: float) -> JobSlot | Execution | None:
        """The earliest job slot or retry due at `now_ts`, taken off the heap."""
        key = self.heap.pop_due(now_ts)
        if key is None:
            return None
        if isinstance(key, tuple):
            return self.retries.pop(key[1])
        return self.jobs[key]

    def next_fire_ts(self) -> float | None:
        return self.heap.peek()

    def count_due(self, ts: float, limit: int) -> int:
        """Roughly how many jobs and retries are due by `ts` (at most `limit`)."""
        return self.heap.count_until(ts, limit)

    def clear(self) -> None:
        self.heap.clear()
        self.jobs.clear()
        self.retries.clear()

    def _time(self, when: datetime, trigger: Trigger | None = None) -> tuple[datetime, float]:
        """The shared datetime equal to `when`, and its timestamp (bounded table). A date
        trigger's time is nearly always its own, so it is not looked up or kept."""
        if trigger is not None and trigger.kind == "date":
            return when, when.timestamp()
        known = self._times.get(when)
        if known is None or known[0].tzinfo is not when.tzinfo:  # equal, other zone
            if len(self._times) >= TIME_INTERN_LIMIT:
                self._times.clear()
            known = self._times[when] = (when, when.timestamp())
        return known

    def _shared(self, trigger: Trigger) -> Trigger:
        """One object per distinct recurring trigger value (they are immutable, so sharing
        is safe). Date triggers are nearly always unique and leave after one fire, so they
        are not kept."""
        if trigger.kind == "date":
            return trigger
        try:
            key = (type(trigger), trigger)
            shared = self._triggers.get(key)
        except TypeError:  # an unhashable trigger is simply not shared
            return trigger
        if shared is not None:
            return shared
        if len(self._triggers) < TRIGGER_INTERN_LIMIT:
            self._triggers[key] = trigger
        return trigger
