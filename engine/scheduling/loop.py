"""The engine loop: one thread that applies commands and fires what is due.

Each step (`run_once`) applies every pending command, fires everything due at `now`, and
returns the seconds until the heap's head is due. Between steps the thread sleeps on the
command queue's condition for exactly that long: a new command (say, a job moved
earlier) wakes it at once; there is no polling interval and no busy wait.

The thread arms fires slightly early (`ARM_LEAD`): it wakes that much before the
head is due, claims and records the fire, and hands it to a worker that sleeps until
the due time and starts it then. The loop's work thus happens before the due time, not
between it and the start. When a crowd of fires is due together (10,000 jobs at
midnight), arming them all takes longer than ARM_LEAD, so the lead grows with the
crowd: the loop counts the fires due by the head (a heap walk that costs what it
counts), multiplies by what arming one has been measured to cost, and wakes that much
earlier (at most MAX_ARM_LEAD). A crowd then starts at its due time as fast as the
workers can take it, instead of trickling out behind the loop.

Each wake also arms what falls due within ARM_WINDOW after the lead, so fires closer
together than that are armed by one step: at 2,000 fires/s a wake arms about eight of
them instead of one, and the loop's per-wake work (the timed wait, draining commands,
planning the next wake, one claim and one job load from the store) is paid per batch.

Tests call `run_once(now)` directly with a fake clock's time; a lock makes a step
atomic, so driving it by hand while the thread runs is also safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from engine.clock import Clock
from engine.gcpause import BULK_ITEMS, hold_gc, paused_gc
from engine.running.wakes import ArmedWakes
from engine.scheduling.collector import CollectorPacer
from engine.scheduling.commands import CommandQueue
from engine.scheduling.firing import Firer
from engine.scheduling.handlers import CommandHandler
from engine.scheduling.timetable import Timetable
from engine.scheduling.window import LoadWindow

log = logging.getLogger(__name__)
#: how early the loop thread arms a fire: the worker then sleeps until the due time
#: itself, so a fire starts as promptly as a bare timed wait, not after the loop's
#: claim, store write and hand-off. A schedule change made in the last ARM_LEAD (plus
#: up to ARM_WINDOW) seconds before a fire applies from the next fire on.
ARM_LEAD = 0.002
#: how far past the lead one wake arms: fires closer together than this are armed in
#: one step, so at 2,000 fires/s the loop wakes every few fires, not for each one
ARM_WINDOW = 0.004
#: the most a crowd of fires is armed ahead of its due time
MAX_ARM_LEAD = 1.0
#: seconds arming one fire is taken to cost until the loop has measured it
FIRST_ARM_COST = 50e-6
#: weight of the newest measurement in the running arm-cost estimate
ARM_COST_WEIGHT = 0.2
#: margin on the estimate: a crowd armed a little early costs nothing, one armed late
#: starts late
ARM_COST_MARGIN = 1.5
#: the longest the collector stays paused past an armed crowd's due time while its fires
#: wait for workers (a pass among the starts cost a 10,000-fire burst a third of its time)
MAX_CROWD_HOLD = 2.0
#: how often the loop looks whether the crowd's fires have all been taken, meanwhile
HOLD_CHECK = 0.01
#: the fewest fires a batch is cut to for an armed fire due soon: when fewer fit, the
#: loop first waits for that fire's worker to wake (each batch costs a claim and a
#: hand-off, so batches of one or two fires cost a fifth more CPU per fire than four)
PACE_BATCH = 4
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
        #: running estimate of the seconds one fire takes to claim, record and hand over
        self._arm_cost = FIRST_ARM_COST
        #: the same in the loop thread's CPU time: the store's I/O (done with the GIL
        #: released) left out, for `pace`
        self._arm_cpu = FIRST_ARM_COST
        #: the head whose crowd was last counted, and its size
        self._crowd_head: float | None = None
        self._crowd = 0
        #: timetable size when the crowd was counted
        self._crowd_size = 0
        #: when the cyclic collector's full passes run (engine/scheduling/collector.py)
        self.collector = CollectorPacer()
        #: ends the collector pause held while an armed crowd starts, and until when
        self._crowd_hold: Callable[[], None] | None = None
        self._crowd_hold_until = 0.0
        self._crowd_held = 0
        self._thread: threading.Thread | None = None
        self._stop = False
        #: with a load window, each step tops it up (engine/scheduling/window.py)
        self.window: LoadWindow | None = None
        #: armed fires the arming steps aside for (engine/running/wakes.py; see `pace`)
        self.wakes: ArmedWakes | None = None
        #: seconds `pace` spent waiting in the current `_fire`, kept out of the arm cost
        self._aside = 0.0

    def run_once(self, now: datetime | None = None) -> float | None:
        """Apply pending commands, fire what is due; seconds from `now` until the next
        fire or load window read, or None when nothing is scheduled."""
        if now is None:
            now = self._clock.now()
        head = self._step(now)
        now_ts = now.timestamp()
        return self._or_window(None if head is None else max(0.0, head - now_ts), now_ts)

    def _or_window(self, delay: float | None, now_ts: float) -> float | None:
        """`delay`, or sooner when the load window's next read is due before it: a read
        counts as work, so an empty heap does not mean sleeping for ever."""
        refill = None if self.window is None else self.window.wait(now_ts)
        if refill is not None and (delay is None or refill < delay):
            return refill
        return delay

    def _step(self, now: datetime, lead: float = 0.0) -> float | None:
        """One step at `now` (arming fires due within `lead`); returns the heap head's
        timestamp."""
        with self.step_lock:
            size = len(self._timetable)
            commands = self._commands.drain()
            for command in commands:
                self._handler.apply(command, now)
            self.collector.note(len(commands), abs(len(self._timetable) - size))
            self._fire(now, lead)
            if self.window is not None:
                self.window.advance(now)
            return self._timetable.next_fire_ts()

    def _fire(self, now: datetime, lead: float) -> None:
        """Fire and arm what is due, measuring what arming one fire costs; a crowd is
        armed with the cyclic collector paused (see engine/scheduling/collector.py)."""
        began, cpu_began = time.perf_counter(), time.thread_time()
        self._aside = 0.0
        crowd = self._crowd if lead > self.lead + ARM_WINDOW else 0
        if crowd < BULK_ITEMS:
            fired = self._firer.fire_due(now, lead)
        else:
            with paused_gc(crowd):
                fired = self._firer.fire_due(now, lead)
        self.collector.note(0, fired)
        if crowd >= BULK_ITEMS and self.collector.bulk_done():
            # the pass the crowd's objects call for, now, ahead of its due time, rather
            # than wherever an allocation among its starts would set it off
            self.collector.collect()
        if crowd >= BULK_ITEMS and fired and self._crowd_hold is None:
            # and no pass while its workers start it: what they make survives until the
            # recorder has written it, and a quarter more survivors sets one off
            self._crowd_hold = hold_gc()
            self._crowd_hold_until = now.timestamp() + lead + MAX_CROWD_HOLD
            self._crowd_held = fired
        if fired:
            cost = (time.perf_counter() - began - self._aside) / fired
            self._arm_cost += ARM_COST_WEIGHT * (cost - self._arm_cost)
            cpu = (time.thread_time() - cpu_began) / fired
            self._arm_cpu += ARM_COST_WEIGHT * (cpu - self._arm_cpu)

    def pace(self, most: int) -> int:
        """How many due entries the next batch may arm (the Firer asks before each):
        as many as fit before the next armed fire is due, at the lesser of the wall and
        CPU time arming one costs, so its worker does not wake into the loop holding
        the GIL. When fewer than PACE_BATCH fit, the loop first waits until that worker
        has woken (engine/running/wakes.py), and the batch is never cut below
        PACE_BATCH: the claim each batch costs must not shrink batches further and
        further."""
        wakes = self.wakes
        if wakes is None:
            return most
        # the GIL is held no longer than either (the CPU time also counts the waits' wakes)
        cost = min(self._arm_cost, self._arm_cpu) * ARM_COST_MARGIN
        began = time.perf_counter()
        gap = wakes.step_aside(cost * PACE_BATCH)
        self._aside += time.perf_counter() - began
        if gap is None or gap <= 0.0:  # nothing armed, or a worker late for a CPU
            return most
        return max(PACE_BATCH, min(most, int(gap / cost)))

    def _lead_for(self, head: float) -> float:
        """How early to wake for the fires due by `head`: the base lead plus the time
        to arm all of them.

        Counting is a heap walk, so it is redone only when the head moved or the heap
        grew or shrank by an eighth since: adding 10,000 jobs due together recounts a
        few dozen times, not 10,000.
        """
        if self.lead <= 0.0:
            return 0.0
        size = len(self._timetable)
        counted_at = self._crowd_size
        if self._crowd_head != head or abs(size - counted_at) > counted_at // 8 + 16:
            limit = int(MAX_ARM_LEAD / max(self._arm_cost, 1e-7)) + 1
            self._crowd = self._timetable.count_due(head + self.lead, limit)
            self._crowd_head, self._crowd_size = head, size
        lead = self.lead + self._crowd * self._arm_cost * ARM_COST_MARGIN
        if self._crowd >= BULK_ITEMS:  # room for the collector's pass before it is due
            lead += self.collector.room_needed()
        return min(MAX_ARM_LEAD, lead)

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
        self._end_crowd_hold(0.0, force=True)  # also when steps were driven by hand

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _end_crowd_hold(self, now: float, force: bool = False) -> bool:
        """Let the collector run again once the crowd's fires have all been taken by
        workers (or MAX_CROWD_HOLD after it was due); True while it stays paused."""
        if self._crowd_hold is None:
            return False
        if not force and self._firer.waiting() and now < self._crowd_hold_until:
            return True
        self._crowd_hold()
        self._crowd_hold = None
        self.collector.note(0, self._crowd_held)  # its pass, at the next quiet moment
        return False

    def _run(self) -> None:
        try:
            self._run_steps()
        finally:
            self._end_crowd_hold(0.0, force=True)

    def _run_steps(self) -> None:
        clock, wakes = self._clock, self.wakes
        lead = self.lead
        #: the arming step the next wake is for, registered as an expected start so the
        #: service's event loop gives way to it (running/wakes.py); released once run
        arming: threading.Lock | None = None
        while not self._stop:
            delay: float | None
            head: float | None = None
            try:
                try:
                    head = self._step(clock.now(), lead + ARM_WINDOW if lead > 0.0 else 0.0)
                finally:
                    if wakes is not None and arming is not None:
                        wakes.started(arming)
                        arming = None
                # measured after the step, so the time the step took is not slept again
                delay, lead = self.plan_wait(head, clock.timestamp())
                if self.collector.wanted(self._quiet_for(delay, clock.timestamp())):
                    self.collector.collect()
                    delay, lead = self.plan_wait(head, clock.timestamp())
                if self._end_crowd_hold(clock.timestamp()):
                    delay = HOLD_CHECK if delay is None else min(delay, HOLD_CHECK)
                delay = self._or_window(delay, clock.timestamp())
            except Exception:
                log.exception("engine step failed; continuing in %.1f s", STEP_FAILURE_PAUSE)
                delay = STEP_FAILURE_PAUSE
            if self._stop:
                return
            if delay is None or delay > 0:
                now = clock.timestamp()
                if wakes is not None and head is not None and head - now <= MAX_ARM_LEAD + lead:
                    arming = wakes.expect_start(head - lead)  # the wake to arm `head`
                self._commands.wait(delay)
        if wakes is not None and arming is not None:  # stopped while waiting
            wakes.started(arming)

    def _quiet_for(self, delay: float | None, now: float) -> float | None:
        """Seconds until the loop or an armed fire needs the thread (None: never)."""
        armed = self._firer.armed_from
        while armed and armed[0] <= now:
            armed.popleft()
        starts = armed[0] - now if armed else None
        if delay is None or starts is None:
            return starts if delay is None else delay
        return min(delay, starts)

    def plan_wait(self, head: float | None, now: float) -> tuple[float | None, float]:
        """(seconds to sleep, lead to arm with on waking) for the heap head `head`.

        A head further off than MAX_ARM_LEAD gets a first wake at that distance, where
        its crowd is counted; the crowd is only counted once it is that close.
        """
        if head is None:
            return None, self.lead
        if head - now > MAX_ARM_LEAD + self.lead:
            return head - MAX_ARM_LEAD - self.lead - now, self.lead
        lead = self._lead_for(head)
        return head - lead - now, lead
