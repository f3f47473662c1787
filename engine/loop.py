"""The engine loop: one thread that applies commands and fires what is due.

Each step (`run_once`) applies every pending command, fires everything due at `now`, and
returns the seconds until the heap's head is due. Between steps the thread sleeps on the
command queue's condition for exactly that long: a new command (say, a job moved
earlier) wakes it at once; there is no polling interval and no busy wait.

Tests call `run_once(now)` directly with a fake clock's time; a lock makes a step
atomic, so driving it by hand while the thread runs is also safe.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from engine.clock import Clock
from engine.commands import CommandQueue
from engine.firing import Firer
from engine.handlers import CommandHandler
from engine.timetable import Timetable

log = logging.getLogger(__name__)
#: pause after a step failed in a way nothing else caught (a bug), so it cannot spin
STEP_FAILURE_PAUSE = 1.0


class EngineLoop:
    def __init__(
        self,
        clock: Clock,
        commands: CommandQueue,
        timetable: Timetable,
        firer: Firer,
        handler: CommandHandler,
    ) -> None:
        self._clock = clock
        self._commands = commands
        self._timetable = timetable
        self._firer = firer
        self._handler = handler
        self.step_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = False

    def run_once(self, now: datetime | None = None) -> float | None:
        """Apply pending commands, fire what is due; seconds until the next fire or None."""
        with self.step_lock:
            if now is None:
                now = self._clock.now()
            for command in self._commands.drain():
                self._handler.apply(command, now)
            self._firer.fire_due(now)
            head = self._timetable.next_fire_ts()
            return None if head is None else max(0.0, head - now.timestamp())

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the engine loop is already running")
        self._thread = threading.Thread(target=self._run, name="cronwell-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish its step and exit; wait for it."""
        self._stop = True
        self._commands.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop:
            try:
                delay = self.run_once()
            except Exception:
                log.exception("engine step failed; continuing in %.1f s", STEP_FAILURE_PAUSE)
                delay = STEP_FAILURE_PAUSE
            if self._stop:
                return
            self._commands.wait(delay)
