"""The Notifier on an engine driven by the fake clock: a missed fire is announced to a
real loopback webhook, an unwatched status is not, ends announced before the notifier
has loaded its jobs are all announced once it has, and the signature is HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from datetime import timedelta

from api.config import Settings
from engine import events as ev
from engine.clock import FakeClock
from engine.events import EventBus
from engine.model import Execution, Job, Status
from jobs.notify import Notifier, signature
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, date_at, make_job, wait_for
from tests.test_api_notifications import Hook


def test_a_missed_fire_is_announced_and_a_completed_one_is_not() -> None:
    hook = Hook()
    try:
        with Harness() as h:
            notify = {"on": ["missed"], "webhook": hook.url}
            h.add(make_job("in_grace", date_at(T0), misfire_grace_time=1, notify=notify))
            h.add(make_job("on_time", date_at(T0), notify=notify))
            notifier = Notifier(
                h.store, Settings(), h.clock, h.scheduler.annotate_execution, backoff=0.01
            )
            notifier.attach(h.scheduler.events)
            notifier.start()
            h.at(0.5)  # both run and complete: in_grace is 0.5 s late, within its grace
            h.settle()
            h.clock.set(T0 + timedelta(seconds=30))
            h.add(make_job("late2", date_at(T0), misfire_grace_time=1, notify=notify))
            h.at(30)  # late2 is 30 s late: missed
            (missed,) = h.executions("late2")
            assert str(missed.status) == "missed"
            assert wait_for(lambda: len(h.store.get_execution(missed.id).notifications) == 1)
            (attempt,) = h.store.get_execution(missed.id).notifications
            assert attempt["outcome"] == "delivered (HTTP 200)"
            assert attempt["at"] == (T0 + timedelta(seconds=30)).isoformat()
            assert [b["job_id"] for b in hook.bodies()] == ["late2"]
            assert wait_for(notifier.idle)
            notifier.stop()
            (on_time,) = h.executions("on_time")
            assert h.store.get_execution(on_time.id).notifications == []
    finally:
        hook.close()


class GatedStore(MemoryStore):
    """A MemoryStore whose `list_jobs` waits for `gate`: a slow first load, on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def list_jobs(self, owner: str | None = None) -> list[Job]:
        assert self.gate.wait(10), "the test never opened the gate"
        return super().list_jobs(owner)


def _annotate(store: MemoryStore) -> Callable[[str, Callable[[Execution], object]], None]:
    def annotate(execution_id: str, change: Callable[[Execution], object]) -> None:
        execution = store.get_execution(execution_id)
        change(execution)
        store.update_execution(execution)

    return annotate


def test_ends_announced_before_the_first_load_are_all_notified_after_it() -> None:
    """A restart announces what recovery abandoned and what fell due while the service
    was down within a millisecond of each other, before the notifier has read which
    jobs notify. Each must be judged on the loaded jobs: the first used to trigger a
    reload and every later one was judged against the still-empty cache and dropped."""
    hook = Hook()
    events = EventBus()
    store = GatedStore()
    try:
        ends = {"sleeper": Status.ABANDONED, "while_down": Status.MISSED}
        for job_id, status in ends.items():
            notify = {"on": [str(status)], "webhook": hook.url}
            store.add_job(make_job(job_id, date_at(T0), notify=notify))
            store.add_execution(Execution(f"x-{job_id}", job_id, status, T0, completed_at=T0))
        notifier = Notifier(store, Settings(), FakeClock(T0), _annotate(store), backoff=0.01)
        notifier.attach(events)
        kinds = {Status.ABANDONED: ev.EXECUTION_FAILED, Status.MISSED: ev.JOB_MISSED}
        for job_id, status in ends.items():
            execution = store.get_execution(f"x-{job_id}")
            events.emit(kinds[status], job_id, T0, execution=execution)
        assert wait_for(lambda: events.delivered == 2), "the bus did not deliver both ends"
        store.gate.set()  # the first load may now read the jobs
        notifier.start()
        assert wait_for(lambda: len(hook.bodies()) == 2, 10), hook.bodies()
        assert {b["job_id"]: b["event"] for b in hook.bodies()} == {
            "sleeper": "execution.abandoned",
            "while_down": "execution.missed",
        }
        assert wait_for(notifier.idle)
        notifier.stop()
    finally:
        events.close()
        hook.close()


def test_the_signature_is_an_hmac_sha256_of_the_body() -> None:
    body = json.dumps({"a": 1}).encode()
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) != signature("other", body)
