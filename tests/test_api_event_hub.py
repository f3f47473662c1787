"""The event hub asks the engine only for the events its clients may want: nothing with
no client, one job's with clients watching that job, everything with an unfiltered
client, and what a departed client watched for `linger` seconds more, so it resumes
without a gap; a resume from a stretch the hub did not record says `gap` (issue 14)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from api.event_hub import EventHub
from engine.events import JOB_ADDED, EventBus
from engine.model import Job, JobKind
from engine.triggers import DateTrigger

AT = datetime(2026, 1, 1, tzinfo=UTC)


def job(job_id: str) -> Job:
    return Job(
        id=job_id,
        name="n",
        kind=JobKind.CLASS,
        target="x.Y",
        trigger=DateTrigger(datetime(2099, 1, 1, tzinfo=UTC)),
    )


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


class Rig:
    """A real bus with the hub listening, on a running event loop."""

    def __init__(self, linger: float) -> None:
        self.bus = EventBus()
        self.hub = EventHub(linger=linger)
        self.hub.attach(asyncio.get_running_loop())
        self.hub.listen(self.bus)
        self.taken = 0

    async def emit(self, *job_ids: str) -> None:
        """Emit one job_added per id and wait until the bus delivered those it took."""
        for job_id in job_ids:
            self.taken += self.bus.wants(JOB_ADDED, job_id)
            self.bus.emit(JOB_ADDED, job_id, AT, job=job(job_id))
        await until(lambda: self.bus.delivered == self.taken)

    def recorded(self) -> list[str]:
        return [item.event.job_id for item in self.hub._ring]

    def last_id(self) -> str:
        return f"{self.hub.boot}-{self.hub._ring[-1].number}"


def run(test: Callable[[], object]) -> None:
    async def main() -> None:
        await test()  # type: ignore[misc]

    asyncio.run(main())


def test_with_no_client_the_engine_hands_the_hub_nothing() -> None:
    async def test() -> None:
        rig = Rig(linger=60)
        assert not rig.bus.wants(JOB_ADDED, "a") and not rig.bus.wants(JOB_ADDED)
        await rig.emit(*[f"j{n}" for n in range(100)])
        assert rig.bus.delivered == 0 and rig.recorded() == []
        rig.bus.close()

    run(test)


def test_clients_on_one_job_have_only_that_jobs_events_recorded() -> None:
    async def test() -> None:
        rig = Rig(linger=60)
        watcher, gap = rig.hub.subscribe("busy", None, None)
        assert gap is None
        assert rig.bus.wants(JOB_ADDED, "busy") and not rig.bus.wants(JOB_ADDED, "other")
        await rig.emit("other", "busy", "other", "busy")
        assert rig.recorded() == ["busy", "busy"]
        await until(lambda: len(watcher.queue) == 2)
        # an unfiltered client makes the hub record everything from then on
        everything, _ = rig.hub.subscribe(None, None, None)
        await rig.emit("other")
        assert rig.recorded() == ["busy", "busy", "other"]
        rig.hub.unsubscribe(everything)
        rig.hub.unsubscribe(watcher)
        rig.bus.close()

    run(test)


def test_a_departed_client_resumes_without_a_gap_within_the_linger_only() -> None:
    async def test() -> None:
        rig = Rig(linger=0.3)
        first, _ = rig.hub.subscribe(None, None, None)
        await rig.emit("a")
        seen = rig.last_id()
        rig.hub.unsubscribe(first)
        await rig.emit("b", "c")  # nobody connected, but the departed client is kept
        assert rig.recorded() == ["a", "b", "c"]
        back, gap = rig.hub.subscribe(None, None, seen)
        assert gap is None and len(back.queue) == 2  # b and c, nothing missing
        seen = rig.last_id()
        rig.hub.unsubscribe(back)
        # once the linger has passed the engine hands over nothing any more ...
        await until(lambda: not rig.bus.wants(JOB_ADDED), 3)
        await rig.emit("d")
        assert rig.recorded() == ["a", "b", "c"]
        # ... so a resume from before that stretch is told it has a gap
        late, gap = rig.hub.subscribe(None, None, seen)
        assert gap is not None and gap.after == seen
        rig.hub.unsubscribe(late)
        rig.bus.close()

    run(test)


def test_a_resume_gets_a_gap_when_its_filter_was_not_recorded_all_along() -> None:
    async def test() -> None:
        rig = Rig(linger=60)
        watcher, _ = rig.hub.subscribe("a", None, None)
        await rig.emit("a")
        seen = rig.last_id()
        rig.hub.unsubscribe(watcher)
        await rig.emit("a", "b")  # only a's events were recorded meanwhile
        # the same filter resumes gapless; an unfiltered client from that id cannot
        same, gap = rig.hub.subscribe("a", None, seen)
        assert gap is None and len(same.queue) == 1
        wider, gap = rig.hub.subscribe(None, None, seen)
        assert gap is not None
        # and from an id seen once everything was recorded, an unfiltered resume is whole
        await rig.emit("b")
        seen = rig.last_id()
        await rig.emit("c", "a")
        again, gap = rig.hub.subscribe(None, None, seen)
        assert gap is None and len(again.queue) == 2
        for client in (same, wider, again):
            rig.hub.unsubscribe(client)
        rig.bus.close()

    run(test)
