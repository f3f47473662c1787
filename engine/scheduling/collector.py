"""When the engine lets CPython's cyclic collector make its full passes.

A full pass traverses every tracked object in the process and holds the GIL while it
does: with 10,000 jobs in memory and 10,000 fires armed, a profile of the burst
benchmark showed two passes of 117 and 149 ms in the middle of the crowd's starts,
over half of the time the 10,000 starts took. CPython starts one when the objects that
survived since the last pass reach a quarter of all of them, which is exactly what
adding jobs or arming a crowd in bulk does: the pass then lands wherever the next
allocation happens to be, most likely among the fires.

So the loop paces it: it counts what it made in bulk (jobs added, fires armed), and once
that passes `BULK_MADE`, it runs the full pass itself at the next quiet moment: no
command applied for `QUIET` seconds and nothing due (and no armed fire starting) for
twice what the last such pass took. A crowd of fires is armed with the collector
paused (bulk work that makes no garbage, as engine/gcpause.py says) and the pass runs
as soon as it is armed; the crowd's lead leaves room for it before the crowd is due. Nothing changes the collector's own
thresholds: with no quiet moment (a steady stream of fires or commands), it runs as it
always does.
"""

from __future__ import annotations

import gc
import time

#: objects made in bulk (jobs added, fires armed) after which a full pass is worth it
BULK_MADE = 5000
#: seconds without a command before the loop counts the engine as quiet
QUIET = 0.05
#: what a full pass is taken to cost until one has been timed
FIRST_PASS_COST = 0.2
#: weight of the newest timing in the running estimate
PASS_COST_WEIGHT = 0.5


class CollectorPacer:
    """The loop thread's bookkeeping of bulk work and of what a full pass costs."""

    def __init__(self) -> None:
        self.made = 0
        #: running estimate of the seconds one full pass takes
        self.pass_cost = FIRST_PASS_COST
        self.last_command = time.monotonic()
        self.passes = 0

    def note(self, commands: int, made: int) -> None:
        """A step applied `commands` commands and made `made` jobs or fires."""
        if commands:
            self.last_command = time.monotonic()
        self.made += made

    def bulk_done(self) -> bool:
        """Whether enough was made in bulk that CPython will soon run a full pass
        (after arming a crowd with the collector paused, the loop runs it at once)."""
        return self.made >= BULK_MADE and gc.isenabled()

    def room_needed(self) -> float:
        """Seconds of quiet a pass needs (twice its estimate)."""
        return 2.0 * self.pass_cost

    def wanted(self, quiet_for: float | None) -> bool:
        """Whether to run the pass now, given how long nothing is due (None: nothing
        is scheduled at all)."""
        if not self.bulk_done():
            return False
        if time.monotonic() - self.last_command < QUIET:
            return False
        return quiet_for is None or quiet_for >= self.room_needed()

    def collect(self) -> float:
        """One full pass now; returns the seconds it took."""
        began = time.perf_counter()
        gc.collect()
        took = time.perf_counter() - began
        self.pass_cost += PASS_COST_WEIGHT * (took - self.pass_cost)
        self.made = 0
        self.passes += 1
        return took
