"""What every measured scheduler offers the dispatch workloads, and the no-op job's
start recorder they all share.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bench.common import wall_now

#: worker threads every system gets (cronwell's default pool size)
POOL_SIZE = 10
#: seconds a fire may be late and still run: large, so no system drops a job
NO_MISFIRE = 3600.0


@dataclass(frozen=True, slots=True)
class CronSpec:
    """One cron job's fields; the workloads pick them so no job fires during a run."""

    minute: int
    hour: int
    day_of_month: int
    month: int


class StartRecorder:
    """Where each no-op job writes the moment it started, by job index.

    The write comes first so bookkeeping never delays the reading; `done` is set when
    every expected job has started.
    """

    def __init__(self, expected: int) -> None:
        self.starts: list[float] = [math.nan] * expected
        self.done = threading.Event()
        self._remaining = expected
        self._lock = threading.Lock()
        if expected == 0:
            self.done.set()

    def record(self, index: int) -> None:
        self.starts[index] = wall_now()
        with self._lock:
            self._remaining -= 1
            if self._remaining == 0:
                self.done.set()

    @property
    def remaining(self) -> int:
        with self._lock:
            return self._remaining


class DispatchSystem(Protocol):
    name: str

    def start(self, *, fires: bool = True) -> None:
        """Start the scheduler (threads, pool) so adds happen on a running engine.

        fires=False says nothing will come due (the memory workload): a system may then
        hold its loop, as APScheduler's paused start does, to spend less time adding.
        """

    def add_date_jobs(self, dues: Sequence[float]) -> None:
        """Add job i due at POSIX time dues[i]; return once every add is acknowledged.

        Building each job and trigger is part of the timed work, as it is for a caller.
        """

    def add_cron_jobs(self, specs: Sequence[CronSpec]) -> None:
        """Add one cron job per spec; return once every add is acknowledged."""

    def stop(self) -> None:
        """Shut down and release everything."""
