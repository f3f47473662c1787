"""A cancel flag that costs almost nothing until someone uses it.

Every execution gets a flag its runner may watch. A `threading.Event` builds a
Condition (a lock, bound methods, a deque) up front: about 6 us and a handful of
GC-tracked objects per fire, paid though almost no run is ever cancelled or waits on
its flag. `CancelFlag` has the Event methods the runners use (`is_set`, `set`, `wait`,
`clear`) and makes its Event on the first `set` or `wait`; `is_set()` is one attribute
read. Only public threading APIs: the Event is a real one.

`sleep` is the worker's wait for an armed fire's due time: one raw lock acquired with a
timeout, which `set` releases. An Event's wait goes through its Condition (a waiter
lock made, appended, acquired, released, removed, around the same timed acquire):
several microseconds of Python per fire, part of it between the wake-up at the due
time and the start.
"""

from __future__ import annotations

import threading
from contextlib import suppress

_create_lock = threading.Lock()


class CancelFlag:
    __slots__ = ("_event", "_set", "_sleeper")

    def __init__(self) -> None:
        self._event: threading.Event | None = None
        self._set = False
        #: the lock a worker sleeping until the due time blocks on (see `sleep`)
        self._sleeper: threading.Lock | None = None

    def _made(self) -> threading.Event:
        event = self._event
        if event is None:
            with _create_lock:
                event = self._event
                if event is None:
                    event = self._event = threading.Event()
        return event

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True  # before the sleeper is read: see `sleep`
        sleeper = self._sleeper
        if sleeper is not None:
            with suppress(RuntimeError):  # released already (set twice)
                sleeper.release()
        self._made().set()

    def clear(self) -> None:
        self._set = False
        if self._event is not None:
            self._event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        return self._made().wait(timeout)

    def sleep(self, seconds: float) -> bool:
        """Block up to `seconds` unless set meanwhile; True when set. For one thread
        at a time (the worker holding the execution)."""
        if self._set:
            return True
        sleeper = threading.Lock()
        sleeper.acquire()
        self._sleeper = sleeper
        if self._set:  # set before it could see the sleeper: it released nothing
            return True
        return sleeper.acquire(True, min(seconds, threading.TIMEOUT_MAX)) or self._set
