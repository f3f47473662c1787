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

The service's event loop is the other thread that runs Python for long: under a load
of job lists it holds the GIL nearly all the time, and every hand-off on a fire's way
(the loop's arming, the worker's wake, each system call before the child's exec) waits
for it. So it gives way for longer: from just before an *expected start* (an armed
fire's, or the loop's wake to arm the next fires) until that start has happened
(`expect_start` / `started`: the run began, its process spawned; the loop's arming
step ran), at most MAX_START_WAIT past it, within the share of its time the caller
allows (api/give_way.py). The engine's own threads wait only for the wake, which
keeps their cost per fire low at thousands of fires a second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: the longest one step aside waits past the fire's due time for its worker to wake
#: (a worker that cannot get a CPU must not hold up the loop's arming for long)
MAX_WAIT_PAST_DUE = 0.001
#: the longest `give_way` waits past an expected start (a start stalled for a CPU
#: must not hold the service's requests for long)
MAX_START_WAIT = 0.004


class ArmedWakes:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        #: each sleeping worker's lock (released when it wakes) -> its fire's due time;
        #: dict operations are atomic, so workers take no shared lock
        self._sleepers: dict[threading.Lock, float] = {}
        #: each expected start's lock (released once it happened) -> when it is due
        self._starts: dict[threading.Lock, float] = {}

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

    def expect_start(self, due: float) -> threading.Lock:
        """Register a start due at `due` (a worker's run, the loop's arming); pass the
        result to `started` once it happened, on every path (a start never passed there
        stays registered)."""
        token = threading.Lock()
        token.acquire()
        self._starts[token] = due
        return token

    def started(self, token: threading.Lock) -> None:
        """The start is over (or will not happen); a second call does nothing."""
        if self._starts.pop(token, None) is not None:
            token.release()

    # -- the side of the loop and the recorder ---------------------------------------
    def _earliest(self) -> tuple[threading.Lock, float] | None:
        """The sleeper due first, leaving out those already MAX_WAIT_PAST_DUE overdue:
        their workers are not waiting for the GIL the caller holds but for a CPU (or a
        clock stepped), and stepping aside again would not help them."""
        return _earliest(self._sleepers, self._now() - MAX_WAIT_PAST_DUE)

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

    # -- the service's event loop ----------------------------------------------------
    @property
    def expecting(self) -> bool:
        """Whether any start is registered (a cheap test before `give_way`)."""
        return bool(self._starts)

    def give_way(self, work: float) -> bool:
        """When the earliest expected start is due within `work` seconds (or is due,
        by less than MAX_START_WAIT), wait with the GIL released until it happened, at
        most MAX_START_WAIT past it. True when it waited."""
        if not self._starts:  # the common case, without a copy
            return False
        now = self._now()
        earliest = _earliest(self._starts, now - MAX_START_WAIT)
        if earliest is None or earliest[1] - now >= work:
            return False
        token, due = earliest
        if token.acquire(True, max(0.0, due + MAX_START_WAIT - now)):
            token.release()  # several may wait on one start
        return True


def _earliest(
    registered: dict[threading.Lock, float], oldest: float
) -> tuple[threading.Lock, float] | None:
    """The entry due first among those due after `oldest`."""
    # dict.copy() runs no Python code, so a worker's change cannot interrupt it (a
    # copy through items() allocates tuples, which can set off a collector pass)
    try:
        entries = registered.copy()
    except RuntimeError:  # not seen; stepping aside is an optimisation, never a failure
        return None
    earliest: tuple[threading.Lock, float] | None = None
    for token, due in entries.items():
        if due > oldest and (earliest is None or due < earliest[1]):
            earliest = (token, due)
    return earliest
