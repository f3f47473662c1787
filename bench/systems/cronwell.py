"""cronwell's engine as the service runs it: `engine.scheduler.Scheduler` over the
in-memory reference store ("cronwell") or a SQLite file in a temp folder
("cronwell-sqlite"), with a runner that only records when it was called, in a process
set up as the service's: its GIL switch interval (engine/gil.py), and what start-up
built frozen out of the collector's passes once started (engine/gcpause.py).

Adds are acknowledged when their futures resolve: the job is in the store and on the
heap, the same promise APScheduler's `add_job` makes when it returns.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

from bench.systems.base import POOL_SIZE, CronSpec, StartRecorder
from engine.gcpause import freeze_what_lives
from engine.gil import use_engine_switch_interval
from engine.interfaces import Outcome, RunObserver, RunRequest
from engine.model import Job, JobKind, Status
from engine.scheduler import Scheduler
from engine.triggers import CronTrigger, DateTrigger
from stores.base import Store
from stores.memory import MemoryStore

#: commands that may wait for the loop at once: the largest workload fits, so an add is
#: never refused as EngineBusy (which would measure the queue, not the engine)
QUEUE_SIZE = 200_000
#: adds a client keeps in flight before waiting for the oldest
WINDOW = 1000
NOOP_TARGET = "bench.noop"


#: measured 14,000-20,000 date adds/s to the memory store on a shared 2-core machine
ADD_RATE_HINT = 8000.0


class CronwellSystem:
    def __init__(self, name: str, recorder: StartRecorder) -> None:
        self.name = name
        self._recorder = recorder
        use_engine_switch_interval()  # as `cronwell serve` does (api/cli.py)
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._store = self._open_store(name)
        # as the service runs it: a durable store gets a start journal (engine/running/journal.py)
        journal = Path(self._tempdir.name) / "journal" if self._tempdir is not None else None
        self._scheduler = Scheduler(
            self._store,
            self._run,
            pool_size=POOL_SIZE,
            queue_size=QUEUE_SIZE,
            journal_folder=journal,
            observer=self._run_observer(),
        )
        self._added = 0

    def _open_store(self, name: str) -> Store:
        store: Store
        if name == "cronwell-sqlite":
            from stores.sqlite import SqliteStore

            self._tempdir = tempfile.TemporaryDirectory(prefix="cronwell-bench-")
            store = SqliteStore(Path(self._tempdir.name) / "bench.db")
        else:
            store = MemoryStore()
        store.open()
        return store

    def _engine_store(self) -> Store:
        """The store the engine writes through (bench.systems.cronwell_observed wraps it)."""
        return self._store

    def _run_observer(self) -> RunObserver | None:
        """What hears of each ended run (bench.systems.cronwell_observed's metrics)."""
        return None

    def _run(self, request: RunRequest) -> Outcome:
        self._recorder.record(request.job.args[0])
        return Outcome(Status.COMPLETED)

    def start(self, *, fires: bool = True) -> None:
        self._scheduler.start()
        freeze_what_lives()  # as `cronwell serve` does once started (api/app.py)

    def _job(self, index: int, trigger: DateTrigger | CronTrigger) -> Job:
        self._added += 1
        return Job(
            id=f"job-{self._added}",
            name="noop",  # one shared string, as APScheduler names jobs after their function
            kind=JobKind.CLASS,
            target=NOOP_TARGET,
            trigger=trigger,
            args=[index],
            misfire_grace_time=None,
            coalesce=False,
        )

    def _add_all(self, jobs: Iterable[Job]) -> None:
        """Send the adds with at most WINDOW unacknowledged, as a client that pipelines
        but bounds what it has in flight would; return when the last is acknowledged.

        The bound keeps the transient futures and commands of a 100,000-job add from
        inflating the resident memory the memory workload measures afterwards.
        """
        add = self._scheduler.add_job
        in_flight: deque[Future[Job]] = deque()
        for job in jobs:
            if len(in_flight) >= WINDOW:
                in_flight.popleft().result()
            in_flight.append(add(job))
        for future in in_flight:
            future.result()

    def add_date_jobs(self, dues: Sequence[float]) -> None:
        self._add_all(
            self._job(index, DateTrigger(datetime.fromtimestamp(due, UTC)))
            for index, due in enumerate(dues)
        )

    def add_cron_jobs(self, specs: Sequence[CronSpec]) -> None:
        self._add_all(
            self._job(0, CronTrigger(s.minute, s.hour, s.day_of_month, s.month)) for s in specs
        )

    def stop(self) -> None:
        self._scheduler.shutdown(timeout=10.0)
        self._store.close()
        if self._tempdir is not None:
            self._tempdir.cleanup()


def make_system(name: str, recorder: StartRecorder) -> CronwellSystem:
    return CronwellSystem(name, recorder)
