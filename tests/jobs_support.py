"""Shared helpers for the job-class tests: contexts, stores and records to feed them."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from api.config import Settings
from engine.clock import FakeClock
from engine.model import Execution, Status
from jobs.base import BaseJob, JobContext, JobServices
from stores.base import Store
from stores.memory import MemoryStore
from stores.sqlite import SqliteStore

START = datetime.fromisoformat("2026-03-01T12:00:00+00:00")
#: every backend the store-facing job tests run on
BACKENDS = ["memory", "sqlite"]


def make_store(backend: str, folder: Path) -> Store:
    if backend == "sqlite":
        store: Store = SqliteStore(folder / "cronwell.db")
    else:
        store = MemoryStore()
    store.open()
    return store


def make_context(
    store: Store, settings: Settings | None = None, clock: FakeClock | None = None
) -> JobContext:
    services = JobServices(
        store=store, settings=settings or Settings(), now=(clock or FakeClock(START)).now
    )
    return JobContext(services=services, job_id="job-under-test", execution_id="exec-under-test")


def run_job(cls: type[BaseJob], context: JobContext, *args: Any, **kwargs: Any) -> Any:
    """Run a job class the way the job-class runner does: one instance, one run."""
    return cls(context).run(*args, **kwargs)


def finished_execution(
    execution_id: str,
    job_id: str,
    status: Status,
    created_at: datetime,
    seconds: float = 1.0,
    error: str = "",
) -> Execution:
    """A terminal execution that started at created_at and ran for `seconds`."""
    return Execution(
        id=execution_id,
        job_id=job_id,
        status=status,
        created_at=created_at,
        started_at=created_at,
        completed_at=created_at + timedelta(seconds=seconds),
        error=error,
        job_name=f"name of {job_id}",
        job_kind="class",
        job_target="jobs.echo.EchoJob",
    )


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released): a closed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
