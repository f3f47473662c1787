"""A cancel flag that costs almost nothing until someone uses it.

Every execution gets a `threading.Event` its runner may watch. A stock Event builds a
Condition (a lock, bound methods, a deque) up front: about 6 us and a handful of
GC-tracked objects per fire, paid even though almost no run is ever cancelled or waits
on its flag. `CancelFlag` is a real `threading.Event` (runners and job classes use it
unchanged) whose Condition is built on first `set`/`wait`/`clear`; `is_set()` only reads
the flag. Written against CPython's Event, which keeps exactly `_flag` and `_cond`.
"""

from __future__ import annotations

import threading

_create_lock = threading.Lock()


class CancelFlag(threading.Event):
    def __init__(self) -> None:  # no super().__init__(): that is what builds the Condition
        self._flag = False
        self._lazy_cond: threading.Condition | None = None

    @property
    def _cond(self) -> threading.Condition:
        cond = self._lazy_cond
        if cond is None:
            with _create_lock:
                cond = self._lazy_cond
                if cond is None:
                    cond = self._lazy_cond = threading.Condition(threading.Lock())
        return cond
