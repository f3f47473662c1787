"""Pausing CPython's cyclic garbage collector around bulk work that makes no garbage.

Loading or scheduling 100,000 jobs allocates millions of long-lived containers, none of
them garbage, yet the collector keeps traversing them: a third of the SQLite load time
and a fifth of start-up, measured. Stores use it while decoding big batches; recovery
while building the heap. Nested and concurrent pauses are counted, and the collector
comes back as it was.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: batches smaller than this run with the collector as it is
BULK_ITEMS = 1000
_lock = threading.Lock()
_pausers = 0
_was_enabled = False


@contextmanager
def paused_gc(items: int) -> Iterator[None]:
    """Pause the cyclic collector while `items` (>= BULK_ITEMS) objects are built."""
    global _pausers, _was_enabled
    if items < BULK_ITEMS:
        yield
        return
    with _lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
