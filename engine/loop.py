"""The engine loop: one thread that applies commands and fires what is due.

Each step (`run_once`) applies every pending command, fires everything due at `now`, and
returns the seconds until the heap's head is due. Between steps the thread sleeps on the
command queue's condition for exactly that long: a new command (say, a job moved
earlier) wakes it at once; there is no polling interval and no busy wait.

The thread arms fires slightly early (`ARM_LEAD`): it wakes that much before the
head is due, claims and records the fire, and hands it to a worker that sleeps until
the due time and starts it then. The loop's work thus happens before the due time, not
between it and the start.

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
#: how early the loop thread arms a fire: the worker then sleeps until the due time
#: itself, so a fire starts as promptly as a bare timed wait, not after the loop's
#: claim, store write and hand-off. A change made in the last ARM_LEAD seconds before a
#: fire applies from the next fire on.
ARM_LEAD = 0.002
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
        #: the thread claims and hands over fires this many seconds before they are due
        self.lead = ARM_LEAD
        self._thread: threading.Thread | None = None
        self._stop = False

    def run_once(self, now: datetime | None = None) -> float | None:
        """Apply pending commands, fire what is due; seconds from `now` until the next
        fire, or None when nothing is scheduled."""
        if now is None:
            now = self._clock.now()
        head = self._step(now)
        return None if head is None else max(0.0, head - now.timestamp())

    def _step(self, now: datetime, lead: float = 0.0) -> float | None:
        """One step at `now` (arming fires due within `lead`); returns the heap head's
        timestamp."""
        with self.step_lock:
            for command in self._commands.drain():
                self._handler.apply(command, now)
            self._firer.fire_due(now, lead)
            return self._timetable.next_fire_ts()

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
        clock = self._clock
        while not self._stop:
            delay: float | None
            lead = self.lead
            try:
                head = self._step(clock.now(), lead)
                # measured after the step, so the time the step took is not slept again
                delay = None if head is None else head - lead - clock.timestamp()
            except Exception:
                log.exception("engine step failed; continuing in %.1f s", STEP_FAILURE_PAUSE)
                delay = STEP_FAILURE_PAUSE
            if self._stop:
                return
            if delay is None or delay > 0:
                self._commands.wait(delay)
