"""The registry: the ten built-ins with the seed's metadata, and what it refuses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.errors import UnknownJobClass
from jobs.base import BaseJob
from jobs.registry import BUILTIN_JOBS, add_job_paths, available_jobs, resolve_job_class

#: the seed's GET /api/scheduler/available-jobs answer, in its order
SEED_JOBS = [
    ("jobs.echo.EchoJob", "EchoJob", "Simple job that echoes arguments"),
    (
        "jobs.server.ServerHealthCheckJob",
        "ServerHealthCheckJob",
        "Job to check server health status",
    ),
    ("jobs.backup.DataBackupJob", "DataBackupJob", "Job to backup database"),
    ("jobs.email.EmailNotificationJob", "EmailNotificationJob", "Job to send email notifications"),
    ("jobs.cleanup.DataCleanupJob", "DataCleanupJob", "Job to clean up old data"),
    ("jobs.metrics.SystemMetricsJob", "SystemMetricsJob", "Job to collect system metrics"),
    ("jobs.report.ReportGenerationJob", "ReportGenerationJob", "Job to generate reports"),
    ("jobs.webhook.WebhookJob", "WebhookJob", "Job to send webhook notifications"),
    ("jobs.maintenance.MaintenanceJob", "MaintenanceJob", "Job for maintenance tasks"),
    ("jobs.custom.CustomScriptJob", "CustomScriptJob", "Job to run custom scripts"),
]


def test_available_jobs_are_the_seeds_ten_in_order() -> None:
    jobs = available_jobs()
    assert [(j["class_string"], j["name"], j["description"]) for j in jobs] == SEED_JOBS
    assert len(BUILTIN_JOBS) == 10


def test_argument_metadata_describes_each_form() -> None:
    by_name = {j["name"]: {a["name"]: a for a in j["arguments"]} for j in available_jobs()}
    recipient = by_name["EmailNotificationJob"]["recipient"]
    assert recipient == {
        "name": "recipient",
        "type": "string",
        "description": "Email address to send to",
        "required": True,
        "source": "pub_args",
        "default": None,
    }
    assert set(by_name["EmailNotificationJob"]) == {"recipient", "subject", "message"}
    assert by_name["ServerHealthCheckJob"]["server_id"]["source"] == "pub_args"
    assert by_name["DataBackupJob"]["collections"]["default"] == [
        "users",
        "servers",
        "jobs",
        "executions",
    ]
    assert by_name["DataCleanupJob"]["days_old"] == {
        "name": "days_old",
        "type": "integer",
        "description": "Delete records older than this many days",
        "required": False,
        "source": "pub_kwargs",
        "default": 30,
    }
    assert (
        by_name["ReportGenerationJob"]["report_type"]["description"] == "daily, weekly or monthly"
    )
    assert by_name["MaintenanceJob"]["tasks"]["default"] == [
        "rebuild_indexes",
        "optimize_queries",
        "clear_cache",
    ]
    assert by_name["SystemMetricsJob"] == {}
    assert by_name["WebhookJob"]["url"]["required"] is True
    assert by_name["WebhookJob"]["pub_kwargs"]["type"] == "object"
    assert by_name["CustomScriptJob"]["script_name"]["required"] is True
    for job in available_jobs():
        for argument in job["arguments"]:
            assert argument["type"] in {"string", "integer", "number", "boolean", "array", "object"}
            assert argument["source"] in {"pub_args", "pub_kwargs"}
            assert argument["description"], (job["name"], argument["name"])


@pytest.mark.parametrize(
    ("class_string", "reason"),
    [
        ("jobs.base.BaseJob", "not a job class"),
        ("jobs.base.JobError", "not a job class"),
        ("jobs.params.ANY_ARGS", "not a job class"),
        ("jobs.echo.NoSuchJob", "not a job class"),
        ("jobs.nowhere.EchoJob", "No module named 'jobs.nowhere'"),
        ("nowhere_at_all.Job", "No module named 'nowhere_at_all'"),
        ("EchoJob", "must look like 'package.module.ClassName'"),
    ],
)
def test_resolve_refuses_what_is_not_a_job_class(class_string: str, reason: str) -> None:
    with pytest.raises(UnknownJobClass) as caught:
        resolve_job_class(class_string)
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_user_job_classes_resolve_from_a_configured_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # undo add_job_paths afterwards
    package = tmp_path / "userjobs_ok"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hello.py").write_text(
        "from jobs.base import BaseJob\n"
        "class HelloJob(BaseJob):\n"
        "    description = 'Says hello'\n"
        "    def run(self, *args, **kwargs):\n"
        "        return 'hello'\n"
    )
    (package / "broken.py").write_text("raise RuntimeError('broken on import')\n")
    add_job_paths([tmp_path])
    try:
        cls = resolve_job_class("userjobs_ok.hello.HelloJob")
        assert issubclass(cls, BaseJob)
        assert available_jobs(["userjobs_ok.hello.HelloJob"])[-1]["description"] == "Says hello"
        with pytest.raises(UnknownJobClass, match="RuntimeError: broken on import"):
            resolve_job_class("userjobs_ok.broken.Job")
    finally:
        for name in [m for m in sys.modules if m.startswith("userjobs_ok")]:
            del sys.modules[name]
