"""The floor: the least any Python scheduler can do on this machine.

One thread walks a sorted list of due times and sleeps in `threading.Event.wait(timeout)`
until each is due, then runs the no-op inline. No store, no pool, no commands: whatever
lateness it shows is the OS's and the interpreter's wake-up cost, which no scheduler
built on the same primitives can undercut.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from bench.systems.base import CronSpec, StartRecorder

#: jobs are "added" by sorting a list
ADD_RATE_HINT = 1_000_000.0


class FloorSystem:
    def __init__(self, name: str, recorder: StartRecorder) -> None:
        self.name = name
        self._recorder = recorder
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self, *, fires: bool = True) -> None:
        """Nothing runs until jobs are given: the loop needs its whole list up front."""

    def add_date_jobs(self, dues: Sequence[float]) -> None:
        entries = sorted((due, index) for index, due in enumerate(dues))
        self._thread = threading.Thread(target=self._loop, args=(entries,), daemon=True)
        self._thread.start()

    def add_cron_jobs(self, specs: Sequence[CronSpec]) -> None:
        raise NotImplementedError("the floor measures latency only; it has no cron jobs")

    def _loop(self, entries: list[tuple[float, int]]) -> None:
        for due, index in entries:
            while not self._stopping:
                delay = due - time.time()
                if delay <= 0:
                    break
                self._wake.wait(delay)
            if self._stopping:
                return
            self._recorder.record(index)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def make_system(name: str, recorder: StartRecorder) -> FloorSystem:
    return FloorSystem(name, recorder)
