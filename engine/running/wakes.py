"""The due instants of armed fires, so the engine's own long work can step aside for them.

A worker holding an armed fire sleeps until its due time, then needs the GIL to start
it. Measured on date-10000 (2,000 fires/s, 2 vCPUs): a fire due while the loop thread
was arming the next batch (about 0.5 ms of Python holding the GIL, 12% of the time)
woke 0.36-0.43 ms late at the median and 1.2-1.8 ms at p99; the other fires 0.11 and
0.4-0.5 ms. A shorter switch interval does not fix it: here even a forced GIL switch
takes about 0.25 ms more than the interval (two wake-ups of an idle vCPU), so a waker
waits out most of any stretch shorter than a millisecond.

So the loop thread, between the batches of fires it arms, and the recorder, before a
write, ask `gap()` how long until the next armed fire is due; when their next piece of
work would not fit, `step_aside()` waits, with the GIL released, until that fire's
worker has woken. The workers register each sleep here (`sleeping` / `woke`): one small
lock per armed fire, about a microsecond.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: the longest one step aside waits past the fire's due time for its worker to wake
#: (a worker that cannot get a CPU must not hold up the loop's arming for long)
MAX_WAIT_PAST_DUE = 0.001


class ArmedWakes:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        #: each sleeping worker's lock (released when it wakes) -> its fire's due time;
        #: dict operations are atomic, so workers take no shared lock
        self._sleepers: dict[threading.Lock, float] = {}

    # -- the workers' side -----------------------------------------------------------
    def sleeping(self, due: float) -> threading.Lock:
        """Register a worker about to sleep until `due`; pass the result to `woke`."""
        token = threading.Lock()
        token.acquire()
        self._sleepers[token] = due
        return token

    def woke(self, token: threading.Lock) -> None:
        self._sleepers.pop(token, None)
        token.release()

    # -- the side of the loop and the recorder ---------------------------------------
    def _earliest(self) -> tuple[threading.Lock, float] | None:
        """The sleeper due first, leaving out those already MAX_WAIT_PAST_DUE overdue:
        their workers are not waiting for the GIL the caller holds but for a CPU (or a
        clock stepped), and stepping aside again would not help them."""
        # dict.copy() runs no Python code, so a worker's change cannot interrupt it (a
        # copy through items() allocates tuples, which can set off a collector pass)
        try:
            sleepers = self._sleepers.copy()
        except RuntimeError:  # not seen; stepping aside is an optimisation, never a failure
            return None
        oldest = self._now() - MAX_WAIT_PAST_DUE
        earliest: tuple[threading.Lock, float] | None = None
        for token, due in sleepers.items():
            if due > oldest and (earliest is None or due < earliest[1]):
                earliest = (token, due)
        return earliest

    def gap(self) -> float | None:
        """Seconds until the earliest armed fire is due (negative: overdue, its worker
        not yet awake); None when no worker sleeps on one that is not long overdue."""
        earliest = self._earliest()
        return None if earliest is None else earliest[1] - self._now()

    def step_aside(self, work: float) -> float | None:
        """When the earliest armed fire is due within `work` seconds, wait until its
        worker woke (at most MAX_WAIT_PAST_DUE past its due time). Returns the gap to
        the next armed fire afterwards (None: none)."""
        earliest = self._earliest()
        if earliest is None:
            return None
        token, due = earliest
        wait = due - self._now()
        if wait >= work:
            return wait
        if token.acquire(True, max(0.0, wait + MAX_WAIT_PAST_DUE)):
            token.release()  # the loop and the recorder may both wait on one worker
        return self.gap()
