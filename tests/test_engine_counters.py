"""A job change that overlaps a finishing run loses no count (issue 3).

The engine changes a job by reading it, changing the copy and writing it back; a worker
may finish a run in between. A real SQLite store is made to let exactly that happen, so
the overlap is certain rather than left to thread timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path

import pytest

from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Job, Status
from engine.scheduler import Scheduler
from stores.sqlite import SqliteStore
from tests.engine_support import T0, Harness, Recorder, every, make_job

WAIT = 5.0


class FinishDuringRead(SqliteStore):
    """SQLite that, once armed, lets a held run finish between the engine's read of a
    job and the write that follows it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.finished = threading.Event()
        self.armed = False

    def get_job(self, job_id: str) -> Job:
        job = super().get_job(job_id)
        if self.armed:
            self.armed = False
            self.release.set()
            assert self.finished.wait(WAIT), "the held run did not finish"
        return job

    def finish_execution(self, execution: Execution) -> None:
        super().finish_execution(execution)
        self.finished.set()

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        super().record_progress(started, finished)  # how workers' runs are recorded
        if finished:
            self.finished.set()


def _held_until_released(store: FinishDuringRead) -> Callable[[RunRequest], Outcome]:
    def run(request: RunRequest) -> Outcome:
        assert store.release.wait(WAIT), "never released"
        return Outcome(Status.COMPLETED, output="ok\n")

    return run


CHANGES: dict[str, Callable[[Scheduler], Future[Job]]] = {
    "modify": lambda s: s.modify_job("j", name="renamed"),
    "pause": lambda s: s.pause_job("j"),
    "resume": lambda s: s.resume_job("j"),
    "replace": lambda s: s.add_job(make_job("j", every(60)), replace=True),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_overlapping_a_finishing_run_keeps_its_count(change: str, tmp_path: Path) -> None:
    store = FinishDuringRead(tmp_path / "cronwell.db")
    store.open()
    runner = Recorder(_held_until_released(store))
    with Harness(runner=runner, store=store) as h:
        h.add(make_job("j", every(3600, start=T0 + timedelta(hours=1)), paused=change == "resume"))
        run = h.do(h.scheduler.run_job_now("j"))
        assert runner.started.wait(WAIT)
        if change == "replace":  # an add reads nothing first: the run ends before it
            store.release.set()
            assert store.finished.wait(WAIT)
        else:
            store.armed = True  # the run ends between the change's read and its write
        changed = h.do(CHANGES[change](h.scheduler))
        assert not store.armed
        h.settle()
        stored = store.get_job("j")
        started = store.get_execution(run.id).started_at
        assert stored.total_executions == 1 == changed.total_executions
        assert stored.last_run_time == started == changed.last_run_time
    store.close()
