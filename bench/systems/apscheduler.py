"""The peer: APScheduler 3.11 as its documentation sets it up.

BackgroundScheduler, MemoryJobStore, a ThreadPoolExecutor the size of cronwell's pool,
and a misfire grace time large enough that no late job is dropped (cronwell runs
however late too), so both systems run every job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from bench.systems.base import NO_MISFIRE, POOL_SIZE, CronSpec, StartRecorder
from engine.gcpause import freeze_what_lives
from engine.gil import use_engine_switch_interval

#: measured 6,900-7,800 date adds/s on a shared 2-core machine
ADD_RATE_HINT = 5000.0


class APSchedulerSystem:
    def __init__(self, name: str, recorder: StartRecorder) -> None:
        self.name = name
        self._recorder = recorder
        self._scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(POOL_SIZE)},
            job_defaults={"misfire_grace_time": NO_MISFIRE, "coalesce": False, "max_instances": 1},
            timezone=UTC,
        )
        self._added = 0

    def start(self, *, fires: bool = True) -> None:
        self._scheduler.start(paused=not fires)
        if self.name == "apscheduler-tuned":  # the control: as cronwell's process is set up
            freeze_what_lives()

    def _next_id(self) -> str:
        self._added += 1
        return f"job-{self._added}"

    def add_date_jobs(self, dues: Sequence[float]) -> None:
        add = self._scheduler.add_job
        record = self._recorder.record
        for index, due in enumerate(dues):
            run_date = datetime.fromtimestamp(due, UTC)
            add(record, "date", run_date=run_date, args=(index,), id=self._next_id())

    def add_cron_jobs(self, specs: Sequence[CronSpec]) -> None:
        add = self._scheduler.add_job
        record = self._recorder.record
        for spec in specs:
            add(
                record,
                "cron",
                minute=spec.minute,
                hour=spec.hour,
                day=spec.day_of_month,
                month=spec.month,
                args=(0,),
                id=self._next_id(),
            )

    def stop(self) -> None:
        self._scheduler.shutdown(wait=True)


def make_system(name: str, recorder: StartRecorder) -> APSchedulerSystem:
    if name == "apscheduler-tuned":  # a control: the peer's process set up as cronwell's
        use_engine_switch_interval()
    return APSchedulerSystem(name, recorder)
