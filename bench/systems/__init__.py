"""The schedulers `bench.dispatch` measures, one adapter module per system.

Adapters are imported by name only inside the child process that measures them, so the
parent (and the smoke test) never imports APScheduler or the engine.
"""

from __future__ import annotations

import importlib

from bench.systems.base import DispatchSystem, StartRecorder

#: system name -> module holding its `make_system(recorder)` factory
SYSTEM_MODULES = {
    "floor": "bench.systems.floor",
    "cronwell": "bench.systems.cronwell",
    "cronwell-sqlite": "bench.systems.cronwell",
    # the same engine as the service observes it (issue 14's A/B): /metrics recording,
    # or the SSE event hub served over HTTP with 0 or 100 idle clients connected
    "cronwell-imports": "bench.systems.cronwell_observed",
    "cronwell-metrics": "bench.systems.cronwell_observed",
    "cronwell-sse0": "bench.systems.cronwell_observed",
    "cronwell-sse100": "bench.systems.cronwell_observed",
    "cronwell-sse100-all": "bench.systems.cronwell_observed",
    "apscheduler": "bench.systems.apscheduler",
    # a control, not a target: the peer in a process set up as cronwell's (engine/gil.py,
    # engine/gcpause.py's freeze)
    "apscheduler-tuned": "bench.systems.apscheduler",
}


def add_rate_hint(name: str) -> float:
    """Date jobs/s the named system adds at worst on a busy machine (its module's
    ADD_RATE_HINT): sizes the wait before the first due time of a latency run."""
    return float(importlib.import_module(SYSTEM_MODULES[name]).ADD_RATE_HINT)


def load_system(name: str, recorder: StartRecorder) -> DispatchSystem:
    """Build the named system around `recorder` (its no-op job records into it)."""
    module = importlib.import_module(SYSTEM_MODULES[name])
    system: DispatchSystem = module.make_system(name, recorder)
    return system
