"""Retrying store writes with backoff, so a store hiccup never loses a record.

Workers call the store through `retry_store_call`: a `StoreError` is logged and the call
repeated after 0.05 s, 0.1 s, 0.2 s ... up to `MAX_DELAY`, until it succeeds or the
engine is stopping (then the last error is raised for the caller to log). Other errors
(NotFound, bugs) are not retried. The loop thread never sleeps here: it reschedules
instead (see `StoreBackoff`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from engine.errors import StoreError

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
FIRST_DELAY = 0.05
MAX_DELAY = 5.0


def retry_store_call(
    stopping: threading.Event, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    delay = FIRST_DELAY
    while True:
        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            if stopping.is_set():
                raise
            log.warning("store call %s failed (%s); retrying in %.2f s", fn.__name__, exc, delay)
            if stopping.wait(delay):
                raise
            delay = min(delay * 2, MAX_DELAY)


class StoreBackoff:
    """The loop's growing pause after consecutive store failures (reset on success)."""

    def __init__(self) -> None:
        self._delay = 0.0

    def failed(self) -> float:
        """Seconds to wait before trying again."""
        self._delay = min(max(self._delay * 2, FIRST_DELAY), MAX_DELAY)
        return self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
