"""A cancel flag that costs almost nothing until someone uses it.

Every execution gets a flag its runner may watch. A `threading.Event` builds a
Condition (a lock, bound methods, a deque) up front: about 6 us and a handful of
GC-tracked objects per fire, paid though almost no run is ever cancelled or waits on
its flag. `CancelFlag` has the Event methods the runners use (`is_set`, `set`, `wait`,
`clear`) and makes its Event on the first `set` or `wait`; `is_set()` on a flag nobody
touched is one attribute read. Only public threading APIs: the Event is a real one.
"""

from __future__ import annotations

import threading

_create_lock = threading.Lock()


class CancelFlag:
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: threading.Event | None = None

    def _made(self) -> threading.Event:
        event = self._event
        if event is None:
            with _create_lock:
                event = self._event
                if event is None:
                    event = self._event = threading.Event()
        return event

    def is_set(self) -> bool:
        event = self._event
        return event is not None and event.is_set()

    def set(self) -> None:
        self._made().set()

    def clear(self) -> None:
        if self._event is not None:
            self._event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        return self._made().wait(timeout)
