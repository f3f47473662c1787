"""Resolving `job_class_string`s to job classes, and the list of built-in ones.

A class string resolves when its module imports (built-ins, or user modules on the
configured CRONWELL_JOB_PATH folders) and names a BaseJob subclass. Anything else is
UnknownJobClass at schedule time, so a typo never reaches the engine.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine.errors import UnknownJobClass
from engine.interfaces import RunRequest
from jobs.base import BaseJob, JobContext, JobError

BUILTIN_JOBS = (
    "jobs.echo.EchoJob",
    "jobs.server.ServerHealthCheckJob",
    "jobs.backup.DataBackupJob",
    "jobs.email.EmailNotificationJob",
    "jobs.cleanup.DataCleanupJob",
    "jobs.metrics.SystemMetricsJob",
    "jobs.report.ReportGenerationJob",
    "jobs.webhook.WebhookJob",
    "jobs.maintenance.MaintenanceJob",
    "jobs.custom.CustomScriptJob",
)


def add_job_paths(paths: Iterable[Path]) -> None:
    """Make user job modules importable (CRONWELL_JOB_PATH)."""
    for path in paths:
        text = str(Path(path).resolve())
        if text not in sys.path:
            sys.path.append(text)


def resolve_job_class(class_string: str) -> type[BaseJob]:
    if not isinstance(class_string, str) or "." not in class_string:
        raise UnknownJobClass(
            f"job_class_string must look like 'package.module.ClassName', not {class_string!r}"
        )
    module_name, _, class_name = class_string.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownJobClass(f"Unknown job class {class_string}: {exc}") from None
    except Exception as exc:  # a user module that fails while importing
        raise UnknownJobClass(
            f"Unknown job class {class_string}: importing {module_name} failed with "
            f"{type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseJob) and cls is not BaseJob):
        raise UnknownJobClass(f"Unknown job class {class_string}: not a job class")
    return cls


def available_jobs(extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Metadata of every built-in class (and any extra class strings), in order."""
    return [resolve_job_class(name).meta() for name in (*BUILTIN_JOBS, *extra)]


def load_job(request: RunRequest) -> Callable[..., Any]:
    """The runner's class loader (`runners.ClassLoader`): the request's job class, built
    with its context, as its bound `run`. Raises UnknownJobClass."""
    job_class = resolve_job_class(request.job.target)
    context = JobContext(
        services=request.services,
        job_id=request.job.id,
        execution_id=request.execution.id,
        cancel=request.cancel,
        owner=request.job.owner,
        env=request.env,
    )
    if job_class.admin_only and not context.owner_is_admin():
        return _refuse(job_class.class_string())
    return job_class(context).run


def _refuse(class_string: str) -> Callable[..., Any]:
    """The `run` of an admin-only class whose job's owner is not an admin."""

    def run(*_args: Any, **_kwargs: Any) -> Any:
        raise JobError(
            f"{class_string} works on every user's data: its job's owner must be an admin"
        )

    return run
