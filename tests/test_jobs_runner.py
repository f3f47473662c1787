"""The built-ins through the real job-class runner: captured output, JSON-safe return
values, and JobError turned into a plain failure message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.config import Settings
from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Job, JobKind, Status
from engine.triggers.date import DateTrigger
from jobs.registry import load_job
from runners import Runner
from stores.memory import MemoryStore
from stores.records import Server
from tests.jobs_support import START, make_context

#: the service's runner, with the real class loader
run_job = Runner(load_job)


def run_through_runner(target: str, settings: Settings, *args: Any, **kwargs: Any) -> Outcome:
    store = MemoryStore()
    store.add_server(Server(id="s1", user_id="u1", name="nowhere", hostname="127.0.0.1", port=1))
    job = Job(
        id="j1",
        name="t",
        kind=JobKind.CLASS,
        target=target,
        trigger=DateTrigger(START),
        args=list(args),
        kwargs=kwargs,
    )
    execution = Execution(id="x1", job_id="j1", status=Status.RUNNING, created_at=START)
    services = make_context(store, settings).services
    return run_job(RunRequest(job=job, execution=execution, services=services, output_cap=65536))


@pytest.mark.parametrize(
    ("target", "args", "kwargs", "printed"),
    [
        ("jobs.echo.EchoJob", ["a"], {"k": 1}, "Args: ['a']"),
        ("jobs.server.ServerHealthCheckJob", ["s1"], {}, "unreachable"),
        ("jobs.backup.DataBackupJob", [], {}, "Backup written to"),
        ("jobs.cleanup.DataCleanupJob", [], {"days_old": 1}, "executions: 0 deleted"),
        ("jobs.metrics.SystemMetricsJob", [], {}, "Memory:"),
        ("jobs.report.ReportGenerationJob", [], {"report_type": "weekly"}, "Weekly report"),
        ("jobs.maintenance.MaintenanceJob", [], {"tasks": ["vacuum"]}, "vacuum:"),
    ],
)
def test_each_builtin_completes_through_the_runner(
    tmp_path: Path, target: str, args: list[Any], kwargs: dict[str, Any], printed: str
) -> None:
    settings = Settings(
        data_dir=tmp_path, extra={"metrics_cpu_interval": 0.05, "health_check_timeout": 1}
    )
    outcome = run_through_runner(target, settings, *args, **kwargs)
    assert outcome.status == Status.COMPLETED, outcome.error
    assert printed in outcome.output
    assert isinstance(outcome.return_value, dict)
    assert json.loads(json.dumps(outcome.return_value)) == outcome.return_value  # JSON as it is


def test_job_error_fails_with_its_message_only() -> None:
    outcome = run_through_runner("jobs.webhook.WebhookJob", Settings(), "gopher://example.com/")
    assert outcome.status == Status.FAILED
    assert outcome.error == "url must use http or https, not gopher: 'gopher://example.com/'"
