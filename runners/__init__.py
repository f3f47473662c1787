"""Runners: turn a RunRequest into an Outcome (the engine's JobRunner).

A `Runner` dispatches on the job's kind: BASH and PYTHON scripts run as child
processes (runners.scripts), CLASS jobs in the calling pool thread (runners.job_class,
through the class loader the service hands it). It never raises: anything unexpected
becomes a FAILED outcome, so a runner bug can never leave an execution "running". The
service's own traceback goes to the log, never into the execution record: the record
says what failed in one line and points at the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from engine.interfaces import Outcome, RunRequest
from engine.model import JobKind, Status
from runners.environment import VariableError, run_variables
from runners.identity import RunAs
from runners.job_class import ClassLoader, JobFailure, run_class_job
from runners.scripts import run_script

__all__ = ["ClassLoader", "JobFailure", "Runner", "runner_failure", "script_argument"]

log = logging.getLogger("cronwell.runners")


class Runner:
    """The engine's JobRunner. The timeout is the request's, else the job's own.

    `reveal` decrypts a job's `env` values (the service's SecretBox.decrypt); the
    decrypted variables live only in the request and the child's environment. Scripts
    start as `run_as` when given (runners.identity)."""

    __slots__ = ("_load", "_reveal", "_run_as")

    def __init__(
        self,
        load_class: ClassLoader,
        reveal: Callable[[str], str] | None = None,
        run_as: RunAs | None = None,
    ) -> None:
        self._load = load_class
        self._reveal = reveal
        self._run_as = run_as

    def __call__(self, request: RunRequest) -> Outcome:
        try:
            job = request.job
            try:
                request.env = run_variables(request, self._reveal)
            except VariableError as exc:
                return Outcome(Status.FAILED, error=str(exc))
            timeout = request.timeout if request.timeout is not None else job.timeout
            if job.kind is JobKind.CLASS:
                return run_class_job(request, timeout=timeout, load=self._load)
            return run_script(
                job.kind,
                job.target,
                [script_argument(arg) for arg in job.args],
                roots=request.script_roots,
                timeout=timeout,
                output_cap=request.output_cap,
                cancel=request.cancel,
                execution_id=request.execution.id,
                env=request.env,
                run_as=self._run_as,
                live=request.live,
                on_start=request.started,
            )
        except Exception as exc:
            return Outcome(Status.FAILED, error=runner_failure(request, exc))


def script_argument(value: Any) -> str:
    """A job argument as one argv string: text as-is, anything else as JSON
    (`7`, `true`, `{"a": 1}`), which a script can parse back; str() when JSON cannot."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def runner_failure(request: RunRequest, exc: BaseException) -> str:
    """Log the service's traceback for `exc` and return the one line the execution
    record keeps instead (no frames of the service's code in a record a user reads)."""
    log.error(
        "runner failed for job %s (execution %s)",
        request.job.id,
        request.execution.id,
        exc_info=exc,
    )
    return f"the runner failed: {type(exc).__name__}: {exc} (the traceback is in the service log)"
