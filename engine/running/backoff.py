"""What a store failure means, decided here and nowhere else.

The rule: a `StoreError` (the driver failed: the database is locked, away, timed out)
is transient, and the call is tried again with a growing backoff, so a store hiccup
never loses a record. Any other exception a store call raises is a bug (in the store
or in what the engine handed it): it is logged once with its traceback and never
retried, and the fire it was for is recorded `failed` with the error (or, if even that
cannot be written, dropped from the heap), so a bug cannot spin forever.

Workers call the store through `retry_store_call`: a `StoreError` is logged and the call
repeated after 0.05 s, 0.1 s, 0.2 s ... up to `MAX_DELAY`, until it succeeds or the
engine is stopping (then the last error is raised for the caller to log). Anything else
is raised at once. The loop thread never sleeps here: it reschedules instead, asking
`StoreBackoff.failed` how long to wait (None: a bug, do not retry).
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
        except StoreError as exc:  # transient (is_transient); anything else is raised
            if stopping.is_set():
                raise
            log.warning("store call %s failed (%s); retrying in %.2f s", fn.__name__, exc, delay)
            if stopping.wait(delay):
                raise
            delay = min(delay * 2, MAX_DELAY)


def is_transient(exc: BaseException) -> bool:
    """True for a store failure worth trying again (see the module docstring)."""
    return isinstance(exc, StoreError)


def failure_text(exc: BaseException) -> str:
    """One line naming a failure, for an execution's error (never a traceback)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class StoreBackoff:
    """The loop's growing pause after consecutive store failures (reset on success)."""

    def __init__(self) -> None:
        self._delay = 0.0

    def failed(self, exc: BaseException, what: str) -> float | None:
        """Seconds to wait before trying `what` again after it raised `exc`, logged;
        None when `exc` is a bug: logged once with its traceback, not to be retried."""
        if not is_transient(exc):
            log.error("%s failed with an unexpected error; not retried", what, exc_info=exc)
            return None
        self._delay = min(max(self._delay * 2, FIRST_DELAY), MAX_DELAY)
        log.error("%s failed (%s); trying again in %.2f s", what, exc, self._delay)
        return self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
