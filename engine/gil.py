"""The GIL switch interval the engine runs with, set by whatever process hosts it.

A worker waking at its fire's due instant needs the GIL; when another thread (the
event loop, the recorder, a worker finishing) holds it, CPython makes the waker wait up
to the switch interval before it asks the holder to let go. 1 ms instead of CPython's
5 ms bounds that wait for a due fire, at a small cost in switches for threads that run
long. The service sets it (api/cli.py) and so does `bench.dispatch`'s cronwell, which is
meant to time the engine as the service runs it.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL = 0.001


def use_engine_switch_interval() -> None:
    """Set this process's GIL switch interval to the engine's (process-wide)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
