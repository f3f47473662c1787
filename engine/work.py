"""The contract between the engine and whatever runs a job.

The engine hands a `RunRequest` to a `JobRunner` (implemented in `runners/`) on a pool
thread and records the `Outcome` it returns. The engine never imports a runner; the
service wires `runners.run_job` in (tests may wire a plain function).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.model import Execution, Job, Status


@dataclass(slots=True)
class Outcome:
    #: COMPLETED, FAILED, TIMEOUT or CANCELLED
    status: Status
    output: str = ""
    error: str = ""
    return_value: Any = None
    exit_code: int | None = None


@dataclass(slots=True)
class RunRequest:
    job: Job
    execution: Execution
    #: set by the engine to ask a run to stop; child processes are killed, job
    #: classes are expected to check it between steps
    cancel: threading.Event = field(default_factory=threading.Event)
    timeout: float | None = None
    output_cap: int = 64 * 1024
    script_roots: tuple[Path, ...] = ()
    #: opaque to the engine and runners: the job classes' context (store, settings)
    services: Any = None


class JobRunner(Protocol):
    def __call__(self, request: RunRequest) -> Outcome:
        """Run the job to an Outcome; must not raise (errors become FAILED outcomes)."""
