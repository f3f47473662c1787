"""Pausing CPython's cyclic garbage collector around bulk work that makes no garbage.

Loading or scheduling 100,000 jobs allocates millions of long-lived containers, none of
them garbage, yet the collector keeps traversing them: a third of the SQLite load time
and a fifth of start-up, measured. Stores use it while decoding big batches; recovery
while building the heap. Nested and concurrent pauses are counted, and the collector
comes back as it was. `hold_gc` is the same pause held past the call that takes it,
for the loop to keep the collector off while an armed crowd starts (collector.py).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: batches smaller than this run with the collector as it is
BULK_ITEMS = 1000


class _Pauses:
    """How many callers hold the collector paused, and whether it ran before the first."""

    lock = threading.Lock()
    holders = 0
    was_enabled = False


def _pause() -> None:
    with _Pauses.lock:
        if _Pauses.holders == 0:
            _Pauses.was_enabled = gc.isenabled()
            gc.disable()
        _Pauses.holders += 1


def _resume() -> None:
    with _Pauses.lock:
        _Pauses.holders -= 1
        if _Pauses.holders == 0 and _Pauses.was_enabled:
            gc.enable()


@contextmanager
def paused_gc(items: int) -> Iterator[None]:
    """Pause the cyclic collector while `items` (>= BULK_ITEMS) objects are built."""
    if items < BULK_ITEMS:
        yield
        return
    _pause()
    try:
        yield
    finally:
        _resume()


def hold_gc() -> Callable[[], None]:
    """Pause the cyclic collector until the returned function is called (once; later
    calls do nothing)."""
    _pause()
    held = [True]

    def release() -> None:
        with _Pauses.lock:
            if not held:
                return
            held.clear()
        _resume()

    return release


def freeze_what_lives() -> int:
    """Move every object the collector tracks now into its permanent generation, and
    return how many: what a service built at start-up (modules, its app, the loaded
    jobs' slots) lives as long as it does, and a full pass traversed all of it, 30 ms
    for the service's imports alone, on whichever thread's allocation set it off (the
    event loop's, between two requests). Frozen, later passes see only what came
    after. Nothing frozen is ever collected: call it once, when start-up is done."""
    gc.freeze()
    return gc.get_freeze_count()
