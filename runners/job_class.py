"""Job classes (`jobs.echo.EchoJob` style), run in the calling pool thread.

The runner knows no job classes: the service hands it a `ClassLoader` (jobs.registry's
`load_job`) that turns a request into the bound `run` of its job class, built with its
context. Output printed by the job is captured per execution (see runners.stdio). A job
that raises `JobFailure` (`jobs.base.JobError` is one) fails with its message only; any
other exception fails with the traceback. The return value is kept when JSON-safe, else as its repr.

Timeout: a thread cannot be killed, so when the timeout passes the run's cancel flag
is set (the job sees `context.cancelled`), the runner keeps waiting for `run` to
return, and the execution is recorded as TIMEOUT. A job that never looks at the flag
holds its pool thread until it returns by itself. A cancel set from outside while the
job runs ends it as CANCELLED once it returns.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import UnknownJobClass
from engine.interfaces import CancelSignal, Outcome, RunRequest
from engine.model import Status
from runners.stdio import captured_output
from runners.values import json_safe


class JobFailure(Exception):
    """An expected failure of a job class: the message becomes the execution's error,
    without a traceback."""


class ClassLoader(Protocol):
    def __call__(self, request: RunRequest) -> Callable[..., Any]:
        """The bound `run` of the request's job class, built with the request's context.

        Raises UnknownJobClass when the class string names no job class.
        """


@dataclass(slots=True)
class _Ending:
    """How `run` ended: its return value, or the error text when it raised."""

    value: Any = None
    error: str | None = None


class _Watchdog:
    """Sets the cancel flag when the timeout passes; a Timer thread, cancelled (and
    so gone at once) when the job returns first."""

    def __init__(self, timeout: float | None, cancel: CancelSignal) -> None:
        self.fired = False
        self.timeout = timeout or 0.0
        self._cancel = cancel
        # a Timer waits on a lock, which takes at most TIMEOUT_MAX (292 years): a longer
        # timeout would kill the timer thread with OverflowError and leave none enforced
        wait = None if timeout is None else min(timeout, threading.TIMEOUT_MAX)
        self._timer = None if wait is None else threading.Timer(wait, self._fire)

    def _fire(self) -> None:
        if not self._cancel.is_set():  # an earlier cancel stays a cancel
            self.fired = True
            self._cancel.set()

    def __enter__(self) -> _Watchdog:
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._timer is not None:
            self._timer.cancel()


def run_class_job(request: RunRequest, *, timeout: float | None, load: ClassLoader) -> Outcome:
    """Run the request's job class to an Outcome; `timeout` in seconds (None: none)."""
    job = request.job
    if request.cancel.is_set():
        return Outcome(Status.CANCELLED, error="cancelled before it started")
    try:
        run = load(request)
    except UnknownJobClass as exc:
        return Outcome(Status.FAILED, error=str(exc))
    if request.started is not None:
        request.started()  # the run begins here, in this thread
    started = time.monotonic()
    with (
        captured_output(request.output_cap, request.live) as output,
        _Watchdog(timeout, request.cancel) as watchdog,
    ):
        ending = _call(lambda: run(*job.args, **job.kwargs))
    took = time.monotonic() - started
    ending.value = json_safe(ending.value, request.output_cap)
    return _outcome(ending, output.text(), watchdog, request.cancel, took)


def _call(run: Callable[[], Any]) -> _Ending:
    try:
        return _Ending(value=run())
    except JobFailure as exc:
        return _Ending(error=str(exc) or type(exc).__name__)
    except SystemExit as exc:  # must not end the pool thread
        return _Ending(error=f"the job called sys.exit({exc.code!r})")
    except Exception as exc:
        return _Ending(error=_job_traceback(exc))


def _job_traceback(exc: BaseException) -> str:
    """The traceback from the job's own code on: this module's frames are dropped."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _outcome(
    ending: _Ending, output: str, watchdog: _Watchdog, cancel: CancelSignal, took: float
) -> Outcome:
    value = ending.value
    raised = "" if ending.error is None else f"\n{ending.error}"
    if watchdog.fired:
        error = (
            f"timed out after {watchdog.timeout:g} s: the cancel flag was set and the "
            f"job returned after {took:.3g} s{raised}"
        )
        return Outcome(Status.TIMEOUT, output=output, error=error, return_value=value)
    if cancel.is_set():
        error = f"cancelled; the job returned after {took:.3g} s{raised}"
        return Outcome(Status.CANCELLED, output=output, error=error, return_value=value)
    if ending.error is not None:
        return Outcome(Status.FAILED, output=output, error=ending.error)
    return Outcome(Status.COMPLETED, output=output, return_value=value)
