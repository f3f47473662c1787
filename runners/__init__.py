"""Runners: turn a RunRequest into an Outcome (the engine's JobRunner).

A `Runner` dispatches on the job's kind: BASH and PYTHON scripts run as child
processes (runners.scripts), CLASS jobs in the calling pool thread (runners.job_class,
through the class loader the service hands it). It never raises: anything unexpected
becomes a FAILED outcome with the traceback, so a runner bug can never leave an
execution "running".
"""

from __future__ import annotations

import json
import traceback
from typing import Any

from engine.interfaces import Outcome, RunRequest
from engine.model import JobKind, Status
from runners.job_class import ClassLoader, JobFailure, run_class_job
from runners.scripts import run_script

__all__ = ["ClassLoader", "JobFailure", "Runner", "script_argument"]


class Runner:
    """The engine's JobRunner. The timeout is the request's, else the job's own."""

    __slots__ = ("_load",)

    def __init__(self, load_class: ClassLoader) -> None:
        self._load = load_class

    def __call__(self, request: RunRequest) -> Outcome:
        try:
            job = request.job
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
                live=request.live,
            )
        except Exception:
            return Outcome(Status.FAILED, error=traceback.format_exc())


def script_argument(value: Any) -> str:
    """A job argument as one argv string: text as-is, anything else as JSON
    (`7`, `true`, `{"a": 1}`), which a script can parse back; str() when JSON cannot."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
