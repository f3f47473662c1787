"""A command future that costs almost nothing when nobody waits on it before it is done.

The one place cronwell leans on CPython internals, kept because the public way costs
too much: a same-run A/B of `bench.dispatch --child cronwell add-date-10000` with a
plain `concurrent.futures.Future` per command against this one measured the figures in
the README's "Layers" note (about a third more CPU per add). What it relies on is
checked by tests/test_engine_command_future.py, which fails on a Python whose Future
keeps its state differently; then this module goes, and commands use a plain Future.

Every command carries a `concurrent.futures.Future`. A stock Future builds a Condition
up front and takes it on every `cancelled()`, `set_result()` and `result()`: about 7 us
per command (create 2.4, cancelled 1.3, set_result 2.3, result 1.5), a sixth of an add.
Most adds are acknowledged by a caller who asks for the result only once it is ready.

`CommandFuture` is a real `Future` (asyncio.wrap_future, wait, as_completed and callbacks
work unchanged) whose Condition is built on first use by anything that must wait or be
notified: result()/exception() on a pending future, callbacks, cancel, waiters. While no
Condition exists nobody can be waiting, so `set_result` just stores the result; the
decision is made under one module lock shared with the Condition's creation, so a
waiter that arrives at the same moment either sees the result or is notified. State
reads (`cancelled`, `done`, a finished `result`) are single attribute reads, atomic under
the GIL. Written against CPython's Future (3.11), which keeps `_condition`, `_state`,
`_result`, `_exception`, `_waiters` and `_done_callbacks`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING
from typing import Any, TypeVar

T = TypeVar("T")
_create_lock = threading.Lock()


class CommandFuture(Future[T]):
    def __init__(self) -> None:  # no super().__init__(): that is what builds the Condition
        self._lazy_condition: threading.Condition | None = None
        self._state = PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        condition = self._lazy_condition
        if condition is None:
            with _create_lock:
                condition = self._lazy_condition
                if condition is None:
                    condition = self._lazy_condition = threading.Condition()
        return condition

    def cancelled(self) -> bool:
        return self._state in (CANCELLED, CANCELLED_AND_NOTIFIED)

    def done(self) -> bool:
        return self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)

    def result(self, timeout: float | None = None) -> T:
        if self._state == FINISHED and self._exception is None:
            result: T = self._result
            return result
        return super().result(timeout)

    def set_result(self, result: T) -> None:
        with _create_lock:
            if self._lazy_condition is None and self._state == PENDING:
                # no Condition yet, so no waiter, callback or cancel has touched it
                self._result = result
                self._state = FINISHED
                return
        super().set_result(result)
