"""The event hub behind `GET /api/scheduler/events`: engine events numbered, kept in a
bounded ring for resumes, and fanned out to each stream client's bounded queue.

Threads: `on_event` runs on the event bus's delivery thread (never the engine's loop
or workers). It numbers the event, appends it to the ring and, only when some client
is connected, wakes the event loop once per batch of events (as api/bridge.py does
for command futures). Everything else (subscribing, matching, encoding, queueing)
runs on the event loop, so subscribers need no locks.

What the engine hands over: only events some client may want. The hub's `Interest`
(engine/events.py), which the engine reads before it copies an event, takes every
job's events while a client without a job filter is connected, only the watched jobs'
while every client watches one job, and nothing while nobody is connected; a client
that leaves is still counted for `linger` seconds, so it resumes without a gap when
it reconnects (EventSource retries within seconds; a slow client dropped is told to).
So an idle service, or a dashboard left open on a quiet job, costs a fire nothing
but a set lookup. The hub remembers since which event it has recorded everything, or
each job, without a break: a resume from before that gets `event: gap` (as one from
an id older than the ring, or from an earlier process, does).

Costs: an event no connected client wants (all watching other jobs or users) costs a
lock, a count, a deque append and two set lookups: it wakes nothing. The JSON text of
an event is built on the event loop, once for every client, and only when a client
(or a resume) needs it. Clients are indexed by their filter, so an event for job A
wakes only the clients watching A (or everything), not every connected one.

A slow client never slows the engine: its queue holds `client_queue` frames at most;
the event that would overflow it drops the client instead (`dropped` is set, its stream
ends with a final `dropped` event saying from where to resume).

Ids are `<boot>-<n>`: n counts the events this hub recorded since it started, boot
tells this process from an earlier one, so a Last-Event-ID from before a restart is
known to have a gap.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from api import views
from api.errors import dumps
from engine import events as ev
from engine.events import EventBus, Interest
from engine.model import Status

#: seconds the hub goes on recording what a client that left was watching, so that it
#: resumes without a gap when it reconnects within that time
RESUME_LINGER = 120.0
#: the key of `EventHub._lingering` for clients that watched every job (or a user's)
EVERY_JOB = ""

#: engine kinds the hub listens to
LISTENED = (
    ev.JOB_ADDED,
    ev.JOB_MODIFIED,
    ev.JOB_PAUSED,
    ev.JOB_RESUMED,
    ev.JOB_REMOVED,
    ev.EXECUTION_SUBMITTED,
    ev.EXECUTION_STARTED,
    ev.EXECUTION_EXECUTED,
    ev.EXECUTION_FAILED,
    ev.JOB_MISSED,
    ev.MAX_INSTANCES_REACHED,
)
JOB_NAMES = {
    ev.JOB_ADDED: "job_added",
    ev.JOB_MODIFIED: "job_modified",
    ev.JOB_PAUSED: "job_paused",
    ev.JOB_RESUMED: "job_resumed",
    ev.JOB_REMOVED: "job_removed",
}


def stream_name(event: ev.Event) -> str:
    """The SSE `event:` name: job_<change>, or execution_<status> (queued, running,
    completed, failed, timeout, cancelled, missed, skipped)."""
    name = JOB_NAMES.get(event.kind)
    if name is not None:
        return name
    if event.kind == ev.EXECUTION_SUBMITTED:
        return "execution_queued"
    if event.kind == ev.EXECUTION_STARTED:
        return "execution_running"
    status = event.execution.status if event.execution is not None else Status.FAILED
    return f"execution_{status}"


def frame(event_id: str | None, name: str, data: Any) -> bytes:
    """One SSE message (JSON data on one line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {dumps(data)}\n\n".encode()


@dataclass(slots=True)
class Numbered:
    """An engine event with its stream id; its frame is built on first need."""

    number: int
    event: ev.Event
    owner: str | None
    _frame: bytes | None = None

    def frame(self, boot: str) -> bytes:
        if self._frame is None:
            self._frame = frame(f"{boot}-{self.number}", stream_name(self.event), self.body())
        return self._frame

    def body(self) -> dict[str, Any]:
        event = self.event
        body: dict[str, Any] = {
            "type": stream_name(event),
            "at": views.iso(event.at),
            "job_id": event.job_id,
            "user_id": self.owner,
        }
        if event.execution is not None:
            shown = views.execution(event.execution)
            del shown["output"]  # read it at /executions/{id} or its /stream
            body["execution"] = shown
        if event.job is not None:
            body["job"] = views.scheduler_job(event.job)
        return body


def owner_of(event: ev.Event) -> str | None:
    if event.execution is not None:
        return event.execution.owner
    if event.job is not None:
        return event.job.owner
    return None


@dataclass(eq=False, slots=True)
class Subscriber:
    """One stream client: its filters, its bounded queue, its wake-up."""

    job_id: str | None
    owner: str | None
    limit: int
    queue: deque[bytes] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: number of the last event queued (or replayed) for it
    cursor: int = 0
    dropped: bool = False
    closed: bool = False
    #: the handler task serving it, and whether it is waiting on a send: a client that
    #: stopped reading blocks that send forever, so dropping it cancels the task
    task: asyncio.Task[Any] | None = None
    sending: bool = False

    def wants(self, item: Numbered) -> bool:
        if self.job_id is not None and item.event.job_id != self.job_id:
            return False
        return self.owner is None or item.owner == self.owner

    def offer(self, item: Numbered, boot: str) -> bool:
        """Queue one event; False (and dropped) when the queue is full."""
        if item.number <= self.cursor:
            return True  # already replayed to it
        if len(self.queue) >= self.limit:
            self.dropped = True
            self.wake.set()
            return False
        self.queue.append(item.frame(boot))
        self.cursor = item.number
        self.wake.set()
        return True

    async def take(self, timeout: float) -> list[bytes]:
        """Everything queued, waiting up to `timeout` for something; [] on a quiet
        stretch (time for a heartbeat), or once dropped or closed."""
        if not self.queue and not self.dropped and not self.closed:
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                pass
        self.wake.clear()
        taken = list(self.queue)
        self.queue.clear()
        return taken


@dataclass(frozen=True, slots=True)
class Gap:
    """A resume that cannot be gapless: events after `after` were not all kept."""

    after: str
    oldest: str | None


class EventHub:
    def __init__(
        self, window: int = 10_000, client_queue: int = 1000, linger: float = RESUME_LINGER
    ) -> None:
        self.boot = secrets.token_hex(4)
        self.window = window
        self.client_queue = client_queue
        self.linger = linger
        self._lock = threading.Lock()
        self._ring: deque[Numbered] = deque(maxlen=window)
        self._number = 0
        self._pending: list[Numbered] = []
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._everything: set[Subscriber] = set()
        self._by_job: dict[str, set[Subscriber]] = {}
        self._by_owner: dict[str, set[Subscriber]] = {}
        self._clients = 0
        self.dropped_clients = 0
        #: what the connected clients filter on, rebuilt on (un)subscribe and read by
        #: the delivery thread without a lock (whole-object swaps): an event no client
        #: wants wakes nobody, so clients watching a quiet job cost the engine nothing
        self._wants_everything = False
        self._wanted_jobs: frozenset[str] = frozenset()
        self._wanted_owners: frozenset[str] = frozenset()
        #: which events the engine hands over (see the module docstring); the bus reads
        #: it on the emitting threads
        self.interest = Interest(everything=False)
        #: (job id, or EVERY_JOB) -> monotonic time until which a departed client's
        #: filter is still recorded
        self._lingering: dict[str, float] = {}
        #: number of the last event before every job's events were recorded without a
        #: break up to now (None: they are not all recorded); per job likewise
        self._everything_since: int | None = None
        self._job_since: dict[str, int] = {}

    def listen(self, events: EventBus) -> Callable[[], None]:
        """Subscribe to the engine's events, as much of them as the clients want."""
        return events.subscribe(self.on_event, LISTENED, self.interest)

    @property
    def client_count(self) -> int:
        return self._clients

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the stream clients live on (set when the server starts)."""
        self._loop = loop

    # -- the delivery thread ---------------------------------------------------------
    def on_event(self, event: ev.Event) -> None:
        execution = event.execution
        if execution is not None and execution.output:
            # the ring keeps events, not outputs: 10,000 ended runs of 64 KiB each
            # would hold 640 MiB (streams leave the output out anyway)
            trimmed = copy.copy(execution)
            trimmed.output = ""
            event = ev.Event(event.kind, event.job_id, event.at, execution=trimmed, job=event.job)
        with self._lock:
            self._number += 1
            item = Numbered(self._number, event, owner_of(event))
            self._ring.append(item)
            if not self._wanted(item):
                return
            self._pending.append(item)
            if self._wake_pending or self._loop is None:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._distribute)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            pass

    def _wanted(self, item: Numbered) -> bool:
        """Whether some connected client's filter may take `item` (a superset test)."""
        return (
            self._wants_everything
            or item.event.job_id in self._wanted_jobs
            or (item.owner is not None and item.owner in self._wanted_owners)
        )

    # -- the event loop --------------------------------------------------------------
    def _refilter(self) -> None:
        self._wanted_jobs = frozenset(self._by_job)
        self._wanted_owners = frozenset(self._by_owner)
        self._wants_everything = bool(self._everything)

    def _distribute(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._wake_pending = False
        for item in pending:
            for subscriber in list(self._targets(item)):
                if subscriber.wants(item) and not subscriber.offer(item, self.boot):
                    self.unsubscribe(subscriber)
                    self.dropped_clients += 1
                    if subscriber.sending and subscriber.task is not None:
                        subscriber.task.cancel()

    def _targets(self, item: Numbered) -> Iterable[Subscriber]:
        yield from self._everything
        yield from self._by_job.get(item.event.job_id, ())
        if item.owner is not None:
            yield from self._by_owner.get(item.owner, ())

    def subscribe(
        self, job_id: str | None, owner: str | None, last_id: str | None
    ) -> tuple[Subscriber, Gap | None]:
        """A new client, given every kept event after `last_id` (a Gap when some of
        them are no longer kept, were never recorded, or the id is from an earlier
        process)."""
        subscriber = Subscriber(job_id, owner, self.client_queue)
        with self._lock:  # registered under the lock: every later event reaches it
            recorded_since = self._recorded_since(job_id)  # before its own filter counts
            if job_id is not None:
                self._by_job.setdefault(job_id, set()).add(subscriber)
            elif owner is not None:
                self._by_owner.setdefault(owner, set()).add(subscriber)
            else:
                self._everything.add(subscriber)
            self._refilter()
            self._reinterest_locked()
            kept = list(self._ring)
            latest = self._number
            self._clients += 1
        gap = None
        if last_id is None:
            subscriber.cursor = latest
        else:
            after = self._number_of(last_id)
            oldest = kept[0].number if kept else latest + 1
            if (
                after is None
                or after > latest
                or after < oldest - 1
                or recorded_since is None
                or after < recorded_since
            ):
                oldest_id = f"{self.boot}-{kept[0].number}" if kept else None
                gap = Gap(last_id, oldest_id)
                after = 0
            for item in kept:
                if item.number > after and subscriber.wants(item):
                    subscriber.queue.append(item.frame(self.boot))
            subscriber.cursor = latest
        return subscriber, gap

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a client (idempotent); what it watched is recorded `linger` seconds more."""
        if subscriber.closed:
            return
        subscriber.closed = True
        subscriber.wake.set()
        self._everything.discard(subscriber)
        for index, key in ((self._by_job, subscriber.job_id), (self._by_owner, subscriber.owner)):
            if key is not None and key in index:
                index[key].discard(subscriber)
                if not index[key]:
                    del index[key]
        self._refilter()
        with self._lock:
            self._clients -= 1
            if self.linger > 0:
                key = subscriber.job_id if subscriber.job_id is not None else EVERY_JOB
                self._lingering[key] = time.monotonic() + self.linger
            self._reinterest_locked()
        if self._loop is not None and self.linger > 0:
            try:
                self._loop.call_later(self.linger + 0.05, self._reinterest)
            except RuntimeError:  # the loop has closed
                pass

    def _reinterest(self) -> None:
        with self._lock:
            self._reinterest_locked()

    def _reinterest_locked(self) -> None:
        """Tell the engine which events to hand over now, and keep track of since when
        each is recorded without a break (see the module docstring)."""
        now = time.monotonic()
        self._lingering = {key: until for key, until in self._lingering.items() if until > now}
        everything = bool(self._everything or self._by_owner) or EVERY_JOB in self._lingering
        jobs = {*self._by_job, *self._lingering}
        jobs.discard(EVERY_JOB)
        latest, before = self._number, self._everything_since
        since: dict[str, int] = {}
        for job_id in jobs:
            kept = self._job_since.get(job_id)
            if before is not None:  # recorded all along with every other job
                kept = before if kept is None else min(kept, before)
            since[job_id] = latest if kept is None else kept
        if everything:
            self._everything_since = latest if before is None else before
        else:
            self._everything_since = None
        self._job_since = since
        self.interest.set(everything, jobs)

    def _recorded_since(self, job_id: str | None) -> int | None:
        """The number after which every event a client filtered on `job_id` (None: no
        job filter) may want has been recorded; None when they are not being recorded."""
        everything = self._everything_since
        if job_id is None:
            return everything
        own = self._job_since.get(job_id)
        if everything is None or own is None:
            return own if everything is None else everything
        return min(everything, own)

    def close(self) -> None:
        """End every stream (the server is stopping) and stop recording."""
        for subscriber in [*self._everything, *(s for g in self._by_job.values() for s in g)]:
            self.unsubscribe(subscriber)
        for group in list(self._by_owner.values()):
            for subscriber in list(group):
                self.unsubscribe(subscriber)
        with self._lock:
            self._lingering.clear()
            self._reinterest_locked()

    def oldest_id(self) -> str | None:
        """The id of the oldest event a resume can still get."""
        with self._lock:
            return f"{self.boot}-{self._ring[0].number}" if self._ring else None

    def _number_of(self, event_id: str) -> int | None:
        boot, _, number = event_id.strip().rpartition("-")
        if boot != self.boot or not number.isdigit():
            return None
        return int(number)
