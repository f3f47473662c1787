"""Helpers shared by the runner tests: real script files and real process checks."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from engine.interfaces import RunRequest
from engine.model import Execution, Job, JobKind, Status
from engine.triggers.date import DateTrigger


def write_script(folder: Path, name: str, body: str, mode: int = 0o755) -> Path:
    """A script file with the given text and permission bits."""
    path = folder / name
    path.write_text(body)
    path.chmod(mode)
    return path


def is_gone(pid: int) -> bool:
    """True when the process no longer runs (a zombie awaiting its reaper counts)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, within: float = 2.0) -> bool:
    """Signals are delivered asynchronously: give a killed process a moment to go."""
    deadline = time.monotonic() + within
    while not is_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def read_pid(path: Path, within: float = 2.0) -> int:
    """The pid a script wrote to a file (waiting briefly for the write)."""
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no pid written to {path}")
        time.sleep(0.02)
    return int(path.read_text())


def make_request(
    kind: JobKind,
    target: str,
    args: list[Any] | None = None,
    *,
    kwargs: dict[str, Any] | None = None,
    roots: tuple[Path, ...] = (),
    timeout: float | None = None,
    output_cap: int = 64 * 1024,
    services: Any = None,
) -> RunRequest:
    """A RunRequest as the engine builds one, for a job of the given kind."""
    trigger = DateTrigger(run_date=datetime(2030, 1, 1, tzinfo=UTC))
    job = Job(
        id=f"job-{uuid.uuid4().hex[:8]}",
        name=f"{kind}:{target}",
        kind=kind,
        target=target,
        trigger=trigger,
        args=args or [],
        kwargs=kwargs or {},
    )
    execution = Execution(
        id=f"exec-{uuid.uuid4().hex[:8]}",
        job_id=job.id,
        status=Status.RUNNING,
        created_at=datetime.now(UTC),
    )
    return RunRequest(
        job=job,
        execution=execution,
        timeout=timeout,
        output_cap=output_cap,
        script_roots=roots,
        services=services,
    )
