"""End to end: `cronwell serve` as a child process on a real store (a SQLite file, and
a database on the session's real MongoDB server: `--store mongodb://...` with
DB_NAME), driven with the seed documents' own curl commands and Python `requests`
example, real scripts in a temp script root; every scheduled script is seen to run and
its execution recorded.

The documents' /opt/... paths become real scripts in the temp root, and their
2024/2025 run_dates (now in the past) become dates 1-2 s ahead; the literal past dates
are separately checked to be refused with a clear 400.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api_support import (
    BASH_ECHO,
    CRONWELL,
    PYTHON_MAIN,
    ROOT,
    ServeProcess,
    finished_execution,
    wait_for,
    write_script,
)
from tests.mongo_server import SERVICE_STORES, store_for


class Service:
    def __init__(self, tmp: Path, store_url: str, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.root = tmp / "scripts"
        self.root.mkdir()
        for name in ("backup.sh", "sleepy.sh"):
            write_script(
                self.root, name, BASH_ECHO if name == "backup.sh" else "#!/bin/bash\nsleep 30\n"
            )
        for name in ("process_data.py", "generate_report.py", "report.py", "script.py"):
            write_script(self.root, name, PYTHON_MAIN, executable=False)
        self.args = [
            *("--store", store_url),
            *("--script-root", str(self.root)),
            "--log-json",
        ]
        self.env = {
            "CRONWELL_DATA_DIR": str(tmp / "data"),
            "CRONWELL_SHUTDOWN_TIMEOUT": "1",
            "TZ": "UTC",
            **env,
        }
        self.process = self.start()

    def start(self, port: int | None = None) -> ServeProcess:
        return ServeProcess(
            self.args, self.tmp / "serve.log", env=self.env, cwd=self.tmp, port=port
        ).wait_healthy()

    @property
    def base(self) -> str:
        return self.process.url

    def real(self, documented_path: str) -> str:
        """A document's /opt/... path as the real script in the temp root."""
        return str(self.root / Path(documented_path).name)

    def curl(self, *args: str) -> tuple[int, Any]:
        """Run curl as the documents do (argv, no shell); status and parsed JSON."""
        done = subprocess.run(
            ["curl", "-sS", "-w", "\n%{http_code}", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body)


@pytest.fixture(scope="module", params=SERVICE_STORES)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with store_for(request, tmp) as store:
        live = Service(tmp, store.url, store.env)
        try:
            yield live
        finally:
            live.process.terminate()


def soon(seconds: float = 1.5) -> str:
    """A run_date `seconds` ahead, naive (the service's zone is UTC), to the microsecond."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(tzinfo=None).isoformat()


def body_for(service: Service, text: str, **replace: str) -> str:
    """The document's -d text with its path and run_date swapped for live ones."""
    for old, new in replace.items():
        text = text.replace(old, new)
    for documented in (
        "/opt/scripts/backup.sh",
        "/opt/scripts/process_data.py",
        "/opt/backup.sh",
        "/opt/report.py",
    ):
        text = text.replace(documented, service.real(documented))
    return text


BACKUP_JOB = """{
    "job_id": "data_backup_job",
    "job_type": "bash",
    "script_path": "/opt/scripts/backup.sh",
    "run_date": "2024-12-31T23:59:59",
    "args": ["--full", "--compress"]
  }"""
PROCESSING_JOB = """{
    "job_id": "daily_data_processing",
    "job_type": "python",
    "script_path": "/opt/scripts/process_data.py",
    "run_date": "2025-01-01T02:00:00",
    "args": ["--dataset", "sales", "--format", "csv"]
  }"""
INTEGRATION_JOBS = [
    (
        """{
    "job_id": "backup_job",
    "job_type": "bash",
    "script_path": "/opt/backup.sh",
    "run_date": "2025-01-01T00:00:00"
  }""",
        "2025-01-01T00:00:00",
    ),
    (
        """{
    "job_id": "report_job",
    "job_type": "python",
    "script_path": "/opt/report.py",
    "run_date": "2025-01-01T06:00:00"
  }""",
        "2025-01-01T06:00:00",
    ),
]
JSON_HEADER = ["-H", "Content-Type: application/json"]


def test_literal_past_dates_of_the_documents_are_refused(service: Service) -> None:
    for text in (BACKUP_JOB, PROCESSING_JOB, *(t for t, _ in INTEGRATION_JOBS)):
        status, body = service.curl(
            "-X",
            "POST",
            f"{service.base}/api/schedule-job",
            *JSON_HEADER,
            "-d",
            body_for(service, text),
        )
        assert status == 400
        assert (
            "is in the past" in body["error"] and "schedule a time in the future" in body["error"]
        )
    assert service.curl(f"{service.base}/api/jobs")[1]["count"] == 0


def test_endpoint_examples_backup_job(service: Service) -> None:
    status, health = service.curl(f"{service.base}/api/health")
    assert (status, health) == (
        200,
        {"status": "healthy", "scheduler_running": True, "store": "ok"},
    )
    when = soon(2.5)
    status, body = service.curl(
        "-X",
        "POST",
        f"{service.base}/api/schedule-job",
        *JSON_HEADER,
        "-d",
        body_for(service, BACKUP_JOB, **{"2024-12-31T23:59:59": when}),
    )
    assert status == 200, body
    script = service.real("/opt/scripts/backup.sh")
    assert body == {
        "message": "Job scheduled successfully",
        "job": {
            "job_id": "data_backup_job",
            "name": f"bash:{script}",
            "next_run_time": f"{when}+00:00",
            "job_type": "bash",
            "script_path": script,
            "args": ["--full", "--compress"],
        },
    }
    status, got = service.curl("-X", "GET", f"{service.base}/api/job/data_backup_job")
    assert status == 200
    assert got["job"]["trigger"].startswith("date[") and got["job"]["executor"] == "default"
    assert service.curl("-X", "PUT", f"{service.base}/api/pause-job/data_backup_job") == (
        200,
        {"message": "Job data_backup_job paused successfully"},
    )
    assert service.curl("-X", "PUT", f"{service.base}/api/resume-job/data_backup_job") == (
        200,
        {"message": "Job data_backup_job resumed successfully"},
    )
    done = finished_execution(service.base, "data_backup_job")
    assert done["status"] == "completed", done
    assert done["output"] == "Processing with arguments: --full --compress\n"
    assert service.curl("-X", "DELETE", f"{service.base}/api/remove-job/data_backup_job") == (
        200,
        {"message": "Job data_backup_job removed successfully"},
    )
    assert service.curl("-X", "DELETE", f"{service.base}/api/remove-job/data_backup_job") == (
        404,
        {"error": "Job not found: data_backup_job"},
    )


def test_complete_usage_scenario(service: Service) -> None:
    base = service.base
    status, body = service.curl(
        "-X",
        "POST",
        f"{base}/api/schedule-job",
        *JSON_HEADER,
        "-d",
        body_for(service, PROCESSING_JOB, **{"2025-01-01T02:00:00": soon(2.5)}),
    )
    assert status == 200, body
    status, got = service.curl("-X", "GET", f"{base}/api/job/daily_data_processing")
    assert status == 200 and got["job"]["name"] == f"python:{service.real('process_data.py')}"
    assert service.curl("-X", "PUT", f"{base}/api/pause-job/daily_data_processing")[0] == 200
    assert service.curl("-X", "PUT", f"{base}/api/resume-job/daily_data_processing")[0] == 200
    status, listing = service.curl("-X", "GET", f"{base}/api/jobs")
    assert status == 200 and "daily_data_processing" in [j["job_id"] for j in listing["jobs"]]
    done = finished_execution(base, "daily_data_processing")
    assert done["status"] == "completed", done
    assert done["return_value"] == "Success"
    assert "Processing with arguments: ('--dataset', 'sales', '--format', 'csv')" in done["output"]
    assert service.curl("-X", "DELETE", f"{base}/api/remove-job/daily_data_processing") == (
        200,
        {"message": "Job daily_data_processing removed successfully"},
    )


def test_python_requests_integration_example(service: Service) -> None:
    # The document's snippet, run as written apart from the URL, the path, and
    # "hours=1" (a run 2 s ahead, so the test sees it run). TZ=UTC makes its naive
    # datetime.now() mean the service's zone.
    snippet = f'''
import requests
import json
from datetime import datetime, timedelta

# Schedule a job
url = "{service.base}/api/schedule-job"
run_time = (datetime.now() + timedelta(seconds=2)).strftime('%Y-%m-%dT%H:%M:%S')

payload = {{
    "job_id": "my_job",
    "job_type": "python",
    "script_path": "{service.real("/path/to/script.py")}",
    "run_date": run_time,
    "args": ["arg1", "arg2"]
}}

response = requests.post(url, json=payload)
print(response.json())
'''
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "TZ": "UTC"},
        check=True,
    )
    assert "'message': 'Job scheduled successfully'" in done.stdout, done.stdout + done.stderr
    execution = finished_execution(service.base, "my_job")
    assert execution["status"] == "completed" and execution["return_value"] == "Success"
    assert "('arg1', 'arg2')" in execution["output"]


def test_curl_integration_script(service: Service) -> None:
    base_url = f"{service.base}/api"
    for text, documented_date in INTEGRATION_JOBS:
        status, body = service.curl(
            "-X",
            "POST",
            f"{base_url}/schedule-job",
            *JSON_HEADER,
            "-d",
            body_for(service, text, **{documented_date: soon(1.5)}),
        )
        assert status == 200, body
    status, listing = service.curl("-X", "GET", f"{base_url}/jobs")
    assert status == 200 and {"backup_job", "report_job"} <= {j["job_id"] for j in listing["jobs"]}
    assert listing["count"] == len(listing["jobs"])
    assert finished_execution(service.base, "backup_job")["exit_code"] == 0
    assert finished_execution(service.base, "report_job")["return_value"] == "Success"


def test_scheduler_document_walkthrough(service: Service) -> None:
    base = f"{service.base}/api"
    created = requests.post(
        f"{base}/users/",
        json={"name": "John Doe", "email": "john@example.com", "role": "admin"},
        timeout=10,
    ).json()
    assert created["status"] == "success" and created["message"] == "User created successfully"
    user_id = created["user_id"]
    assert requests.get(f"{base}/users/", timeout=10).json()["total"] == 1
    assert (
        requests.get(f"{base}/users/{user_id}", timeout=10).json()["data"]["email"]
        == "john@example.com"
    )
    updated = requests.put(
        f"{base}/users/{user_id}",
        json={"name": "Jane Doe", "email": "jane@example.com", "role": "user"},
        timeout=10,
    ).json()
    assert updated["message"] == "User updated successfully"

    server = requests.post(
        f"{base}/servers/create",
        json={
            "user_id": user_id,
            "name": "Production Server",
            "hostname": "prod.example.com",
            "port": 8080,
            "status": "running",
            "connection_name": "ServiceNow Connection",
            "instance_url": "https://dev123456.service-now.com",
            "username": "admin",
            "password": "password123",
        },
        timeout=10,
    ).json()
    assert server["message"] == "Server Production Server created successfully"
    assert requests.get(f"{base}/servers/", timeout=10).json()["total"] == 1
    one = requests.get(f"{base}/servers/{server['server_id']}", timeout=10)
    assert one.json()["data"]["hostname"] == "prod.example.com" and "password123" not in one.text
    assert requests.get(f"{base}/servers/user/{user_id}", timeout=10).json()["total"] == 1

    job = requests.post(
        f"{base}/scheduler/jobs",
        json={
            "user_id": user_id,
            "job_class_string": "jobs.echo.EchoJob",
            "name": "Daily Echo Job",
            "description": "Runs echo job daily",
            "minute": "0",
            "hour": "9",
            "day_of_month": "*",
            "month": "*",
            "day_of_week": "*",
            "pub_args": ["arg1", "arg2"],
            "pub_kwargs": {"key": "value"},
        },
        timeout=10,
    ).json()
    assert job["message"] == "Job 'Daily Echo Job' created successfully"
    job_id = job["job_id"]
    listed = requests.get(f"{base}/scheduler/jobs", timeout=10).json()
    assert job_id in [j["_id"] for j in listed["data"]]
    assert requests.get(f"{base}/scheduler/jobs/{job_id}", timeout=10).json()["data"][
        "next_run_time"
    ]
    assert requests.get(f"{base}/scheduler/users/{user_id}/jobs", timeout=10).json()["total"] == 1
    changed = requests.put(
        f"{base}/scheduler/jobs/{job_id}",
        json={
            "name": "Updated Echo Job",
            "description": "Updated description",
            "minute": "*/5",
            "hour": "*",
            "is_enabled": True,
        },
        timeout=10,
    ).json()
    assert changed["message"] == "Job updated successfully"
    assert (
        requests.patch(f"{base}/scheduler/jobs/{job_id}/pause", timeout=10).json()["message"]
        == "Job paused successfully"
    )
    assert (
        requests.patch(f"{base}/scheduler/jobs/{job_id}/resume", timeout=10).json()["message"]
        == "Job resumed successfully"
    )
    run = requests.post(f"{base}/scheduler/jobs/{job_id}/run", timeout=10).json()
    assert run["message"] == "Job execution started"

    def finished() -> dict[str, Any] | None:
        data: dict[str, Any] = requests.get(
            f"{base}/scheduler/executions/{run['execution_id']}", timeout=10
        ).json()["data"]
        return data if data["status"] == "completed" else None

    execution = wait_for(finished, 15, "the echo job's execution")
    assert "Args: ['arg1', 'arg2']" in execution["output"] or "arg1" in execution["output"]
    assert execution["job_name"] == "Updated Echo Job"
    listing = requests.get(
        f"{base}/scheduler/executions", params={"job_id": job_id}, timeout=10
    ).json()
    assert listing["total"] == 1 and listing["data"][0]["_id"] == run["execution_id"]
    available = requests.get(f"{base}/scheduler/available-jobs", timeout=10).json()
    assert available["total"] == 10
    stats = requests.get(f"{base}/scheduler/stats", params={"user_id": user_id}, timeout=10).json()
    assert stats["stats"]["completed_executions"] == 1 and stats["stats"]["success_rate"] == 100.0
    health = requests.get(f"{base}/scheduler/health", timeout=10).json()
    assert (health["status"], health["message"]) == ("healthy", "Scheduler is running")
    assert (
        requests.delete(f"{base}/scheduler/jobs/{job_id}", timeout=10).json()["message"]
        == "Job deleted successfully"
    )
    assert (
        requests.delete(f"{base}/users/{user_id}", timeout=10).json()["message"]
        == "User deleted successfully"
    )
    assert requests.get(f"{base}/servers/", timeout=10).json()["total"] == 0
    docs = requests.get(f"{service.base}/docs", timeout=10).text
    assert (
        "/docs/swagger-ui-bundle.js" in docs
        and "/openapi.json"
        in requests.get(f"{service.base}/docs/swagger-initializer.js", timeout=10).text
    )
    assert (
        "/api/scheduler/jobs"
        in requests.get(f"{service.base}/openapi.json", timeout=10).json()["paths"]
    )


def test_sigterm_stops_gracefully_and_state_survives_a_restart(service: Service) -> None:
    base = service.base
    status, _ = service.curl(
        "-X",
        "POST",
        f"{base}/api/schedule-job",
        *JSON_HEADER,
        "-d",
        json.dumps(
            {
                "job_id": "survivor",
                "job_type": "bash",
                "script_path": service.real("backup.sh"),
                "run_date": "2099-01-01T00:00:00",
            }
        ),
    )
    assert status == 200
    service.curl(
        "-X",
        "POST",
        f"{base}/api/schedule-job",
        *JSON_HEADER,
        "-d",
        json.dumps(
            {
                "job_id": "long_runner",
                "job_type": "bash",
                "script_path": service.real("sleepy.sh"),
                "run_date": "2099-01-01T00:00:00",
            }
        ),
    )
    _, run = service.curl("-X", "POST", f"{base}/api/scheduler/jobs/long_runner/run")
    execution_id = run["execution_id"]
    wait_for(
        lambda: (
            requests.get(f"{base}/api/scheduler/executions/{execution_id}", timeout=5).json()[
                "data"
            ]["status"]
            == "running"
        ),
        10,
        "the long script to start",
    )
    started = time.monotonic()
    assert service.process.terminate(timeout=20) == 0
    assert time.monotonic() - started < 15
    log = service.process.output()
    assert "Traceback" not in log
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]  # --log-json
    assert any(e["message"] == "engine stopped" for e in entries)
    port = service.process.port
    service.process = service.start(port=port)
    _, job = service.curl(f"{service.base}/api/job/survivor")
    assert job["job"]["next_run_time"] == "2099-01-01T00:00:00+00:00"
    _, stopped = service.curl(f"{service.base}/api/scheduler/executions/{execution_id}")
    assert stopped["data"]["status"] == "cancelled" and stopped["data"]["completed_at"]


def _run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - the exit code is what is checked
        [*CRONWELL, "serve", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_check_and_one_line_start_errors(tmp_path: Path) -> None:
    ok = _run_cli(
        "--check",
        "--store",
        f"sqlite:///{tmp_path / 'ok.db'}",
        "--script-root",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert ok.returncode == 0 and ok.stdout.startswith(
        "cronwell: configuration OK; store sqlite:///"
    )
    (tmp_path / "adir.db").mkdir()
    bad_store = _run_cli(
        "--store", f"sqlite:///{tmp_path / 'adir.db'}", "--port", "0", cwd=tmp_path
    )
    assert bad_store.returncode == 1
    assert bad_store.stderr.count("\n") == 1 and "Traceback" not in bad_store.stderr
    assert bad_store.stderr.startswith("cronwell: cannot open the sqlite store sqlite:///")
    mongo = _run_cli(
        "--check",
        "--store",
        "mongodb://user:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=300",
        cwd=tmp_path,
    )
    assert mongo.returncode == 1 and "hunter2" not in mongo.stderr and mongo.stderr.count("\n") == 1
    zone = _run_cli("--check", "--timezone", "Mars/Olympus", cwd=tmp_path)
    assert (zone.returncode, zone.stderr) == (
        1,
        "cronwell: invalid configuration: unknown timezone: 'Mars/Olympus'\n",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = _run_cli(
            "--store",
            f"sqlite:///{tmp_path / 'busy.db'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(taken.getsockname()[1]),
            cwd=tmp_path,
        )
    assert busy.returncode == 1 and "Traceback" not in busy.stderr, busy.stderr
    assert busy.stderr.count("\n") == 1
    assert busy.stderr.startswith("cronwell: cannot listen on 127.0.0.1:")
