"""Runners: turn a RunRequest into an Outcome (the engine's JobRunner).

`run_job` dispatches on the job's kind: BASH and PYTHON scripts run as child
processes (runners.scripts), CLASS jobs in the calling pool thread
(runners.job_class). It never raises: anything unexpected becomes a FAILED outcome
with the traceback, so a runner bug can never leave an execution "running".
"""

from __future__ import annotations

import json
import traceback
from typing import Any

from engine.model import JobKind, Status
from engine.work import Outcome, RunRequest
from runners.job_class import run_class_job
from runners.scripts import run_script

__all__ = ["run_job", "script_argument"]


def run_job(request: RunRequest) -> Outcome:
    """The engine's JobRunner. The timeout is the request's, else the job's own."""
    try:
        job = request.job
        timeout = request.timeout if request.timeout is not None else job.timeout
        if job.kind is JobKind.CLASS:
            return run_class_job(request, timeout=timeout)
        return run_script(
            job.kind,
            job.target,
            [script_argument(arg) for arg in job.args],
            roots=request.script_roots,
            timeout=timeout,
            output_cap=request.output_cap,
            cancel=request.cancel,
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
