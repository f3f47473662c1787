"""The run observer (engine.interfaces.RunObserver): told of every run that ended, once,
after its record is written; never of fires that did not run."""

from __future__ import annotations

import threading
from datetime import timedelta

from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Status
from stores.memory import MemoryStore
from tests.engine_support import T0, Harness, date_at, make_job, wait_for


class Heard:
    def __init__(self, store: object) -> None:
        self.ended: list[tuple[str, str, str]] = []
        self.threads: set[str] = set()
        self.store = store

    def ended_hook(self, execution: Execution) -> None:
        stored = self.store.get_execution(execution.id)  # type: ignore[attr-defined]
        self.ended.append((execution.job_id, str(execution.status), str(stored.status)))
        self.threads.add(threading.current_thread().name)


def test_each_ended_run_is_observed_once_after_it_is_recorded() -> None:
    def run(request: RunRequest) -> Outcome:
        if request.job.id == "bad":
            return Outcome(Status.FAILED, error="no")
        return Outcome(Status.COMPLETED)

    store = MemoryStore()
    heard = Heard(store)

    class Observer:
        def ended(self, execution: Execution) -> None:
            heard.ended_hook(execution)

    with Harness(runner=run, store=store, observer=Observer()) as h:
        h.add(make_job("good", date_at(T0)))
        h.add(make_job("bad", date_at(T0)))
        h.add(make_job("late", date_at(T0), misfire_grace_time=1.0))
        h.at(0)
        h.settle()
        h.at(30)  # nothing new: "late" already fired at 0
        assert wait_for(lambda: len(heard.ended) == 3)
        assert sorted(heard.ended) == [
            ("bad", "failed", "failed"),
            ("good", "completed", "completed"),
            ("late", "completed", "completed"),
        ]
        assert heard.threads == {"cronwell-recorder"}


def test_a_fire_that_never_ran_is_not_observed_but_a_cancel_while_queued_is() -> None:
    store = MemoryStore()
    heard = Heard(store)
    release = threading.Event()

    class Observer:
        def ended(self, execution: Execution) -> None:
            heard.ended_hook(execution)

    def held(request: RunRequest) -> Outcome:
        assert release.wait(5)
        return Outcome(Status.COMPLETED)

    with Harness(runner=held, store=store, pool_size=1, observer=Observer()) as h:
        h.clock.set(T0 + timedelta(seconds=120))
        h.add(make_job("j", date_at(T0), misfire_grace_time=1.0))
        h.at(120)
        assert h.statuses("j") == ["missed"]
        h.do(h.scheduler.run_job_now("j"))  # takes the only worker, held
        queued = h.do(h.scheduler.run_job_now("j"))  # waits in the backlog
        cancelled = h.do(h.scheduler.cancel_execution(queued.id))
        assert cancelled.status == Status.CANCELLED
        # the loop recorded that one itself (no worker, no recorder batch)
        assert heard.ended == [("j", "cancelled", "cancelled")]
        release.set()
        h.settle()
        assert wait_for(lambda: len(heard.ended) == 2)
        assert heard.ended[1] == ("j", "completed", "completed")
        assert sorted(h.statuses("j")) == ["cancelled", "completed", "missed"]
