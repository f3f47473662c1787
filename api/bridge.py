"""Hand the engine's finished command futures back to the event loop, a batch at a time.

`asyncio.wrap_future` costs one `call_soon_threadsafe` (a byte down the loop's self-pipe
and a wake of the event loop) per command, and with `shield` and `wait_for` around it
four asyncio futures and a task-side timer per request. Here the engine's thread only
appends the finished future to a deque and wakes the event loop when no wake is already
pending, so the N adds the loop thread applies in one step cost one wake, and a request
awaits one plain asyncio future. Only the `concurrent.futures.Future` the engine resolves
is shared between the threads; the asyncio future is touched on the event loop alone.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class FutureBridge:
    """Delivers `concurrent.futures.Future` outcomes to asyncio futures on one loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._finished: deque[tuple[Future[Any], asyncio.Future[Any]]] = deque()
        self._wake_pending = False

    def watch(self, future: Future[T]) -> asyncio.Future[T]:
        """An asyncio future (on this bridge's loop) that finishes as `future` does.

        Cancelling the returned future never cancels `future`: giving up waiting must not
        withdraw a command the engine may already be applying."""
        waiter: asyncio.Future[T] = self._loop.create_future()
        future.add_done_callback(lambda done: self._on_done(done, waiter))
        return waiter

    def _on_done(self, future: Future[Any], waiter: asyncio.Future[Any]) -> None:
        """Runs on whichever thread finished `future` (usually the engine's loop thread).

        The append comes before the flag is read, and `_deliver` clears the flag before
        it empties the deque: a future is either seen by a pending delivery or wakes a
        new one. Two threads racing here may wake the loop twice, which is harmless."""
        self._finished.append((future, waiter))
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

    def _deliver(self) -> None:
        """On the event loop: copy every finished outcome to its waiter."""
        self._wake_pending = False
        finished = self._finished
        while finished:
            future, waiter = finished.popleft()
            if waiter.done():  # the request gave up (timeout or its task was cancelled)
                continue
            if future.cancelled():
                waiter.cancel()
                continue
            error = future.exception()
            if error is None:
                waiter.set_result(future.result())
            else:
                waiter.set_exception(error)


_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FutureBridge] = (
    weakref.WeakKeyDictionary()
)


def bridge_for(loop: asyncio.AbstractEventLoop) -> FutureBridge:
    """The one bridge of `loop` (made on first use; forgotten with the loop)."""
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = FutureBridge(loop)
    return bridge
