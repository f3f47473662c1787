"""The event loop gives way to the engine's due starts, within a share of its time.

The engine's threads share one GIL with the event loop. Under a load of requests (8
clients listing 1,000 jobs back to back) the loop runs Python nearly all the time, and
every hand-off on a fire's way to its process waits for the GIL: the loop thread's wake
to arm it, the worker's wake at its due time, each system call before the child's exec.
Measured with bench.canary's list-jobs load (60 fires, 2 vCPUs, quiet machine): due ->
bash's first line was 8.0 ms at the median and 17.7 ms at p90, against 2.9 and 3.6 ms
with no load.

So before it takes in more of a request (`GuardedProtocol.data_received`), the loop
asks the engine whether a start is expected within WORK seconds (an armed fire's, or
the engine loop's wake to arm the next ones: engine/running/wakes.py); if one is, it
waits with the GIL released until that start has happened, at most MAX_START_WAIT past
it. It never gives away more than SHARE of its time: credit accrues at SHARE per
second of wall time up to CREDIT_CAP and each wait spends what it took, so at
thousands of fires a second requests still get the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.running.wakes import ArmedWakes

#: how long before an expected start the loop stops taking in requests: longer than
#: what one pass of the loop usually runs, so the start does not wait for the GIL
WORK = 0.002
#: the most of the loop's time that giving way may take, over any stretch
SHARE = 0.2
#: seconds of credit that can build up while no start is expected
CREDIT_CAP = 0.05


class GiveWay:
    """Called by the event loop before each chunk of a request it reads."""

    __slots__ = ("_clock", "_credit", "_last", "_wakes", "share", "work")

    def __init__(
        self,
        wakes: ArmedWakes,
        *,
        share: float = SHARE,
        work: float = WORK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wakes = wakes
        self._clock = clock
        self.share = share
        self.work = work
        self._credit = CREDIT_CAP
        self._last = clock()

    @property
    def credit(self) -> float:
        """Seconds of waiting the loop may still spend now (as of the last call)."""
        return self._credit

    def __call__(self) -> None:
        wakes = self._wakes
        if not wakes.expecting:  # nothing armed: the common case costs one attribute read
            return
        now = self._clock()
        credit = min(CREDIT_CAP, self._credit + (now - self._last) * self.share)
        self._last = now
        if credit > 0.0 and wakes.give_way(self.work):
            credit -= self._clock() - now
        self._credit = credit
