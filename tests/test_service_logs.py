"""Structured logs of a real `cronwell serve` child process: one line per engine event
with job_id and execution_id as fields, `key=value` by default and JSON with
CRONWELL_LOG_JSON, and no password anywhere in them.

Each test drives a short-lived service over HTTP on loopback (real scripts, a real
SQLite file or the memory store) and reads the lines it wrote.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from tests.api_support import ServeProcess, finished_execution, wait_for, write_script

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_key_values(line: str) -> dict[str, Any]:
    """One `key=value` line; quoted values are JSON strings."""
    return {k: json.loads(v) if v.startswith('"') else v for k, v in FIELD.findall(line)}


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(tzinfo=None).isoformat()


def events(entries: list[dict[str, Any]], kind: str, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in entries
        if e.get("event") == kind and all(e.get(k) == v for k, v in match.items())
    ]


def schedule_script(base: str, job_id: str, path: Path, run_date: str) -> None:
    body = {"job_id": job_id, "job_type": "bash", "script_path": str(path), "run_date": run_date}
    response = requests.post(f"{base}/api/schedule-job", json=body, timeout=5)
    assert response.status_code == 200, response.text


def test_key_value_lines_for_every_job_and_execution_event(tmp_path: Path) -> None:
    root = tmp_path / "scripts"
    root.mkdir()
    ok = write_script(root, "ok.sh", '#!/bin/bash\necho "ok $@"\n')
    bad = write_script(root, "bad.sh", "#!/bin/bash\necho broken >&2\nexit 3\n")
    sleepy = write_script(root, "sleepy.sh", "#!/bin/bash\nsleep 30\n")
    service = ServeProcess(
        ["--store", f"sqlite:///{tmp_path / 'cronwell.db'}", "--script-root", str(root)],
        tmp_path / "serve.log",
        env={"CRONWELL_DATA_DIR": str(tmp_path / "data"), "CRONWELL_SHUTDOWN_TIMEOUT": "1"},
        cwd=tmp_path,
    ).wait_healthy()
    base = service.url
    try:
        schedule_script(base, "ok", ok, soon(0.8))
        schedule_script(base, "bad", bad, soon(0.8))
        # a scheduled fire while a manual run of the same job is still running:
        # max_instances (1) makes the engine record it as skipped
        schedule_script(base, "sleepy", sleepy, soon(1.2))
        running = requests.post(f"{base}/api/scheduler/jobs/sleepy/run", timeout=5).json()

        user = requests.post(
            f"{base}/api/users/", json={"name": "Ops", "email": "ops@example.com"}, timeout=5
        ).json()["user_id"]
        echo = {
            "user_id": user,
            "job_class_string": "jobs.echo.EchoJob",
            "name": "echo",
            "minute": "0",
            "hour": "9",
            "pub_args": ["a"],
        }
        job = requests.post(f"{base}/api/scheduler/jobs", json=echo, timeout=5).json()["job_id"]
        run = requests.post(f"{base}/api/scheduler/jobs/{job}/run", timeout=5).json()
        requests.put(f"{base}/api/scheduler/jobs/{job}", json={"hour": "10"}, timeout=5)
        requests.patch(f"{base}/api/scheduler/jobs/{job}/pause", timeout=5)
        requests.patch(f"{base}/api/scheduler/jobs/{job}/resume", timeout=5)
        requests.delete(f"{base}/api/scheduler/jobs/{job}", timeout=5)
        finished_execution(base, "ok")
        finished_execution(base, "bad")

        def skipped() -> bool:
            found = requests.get(
                f"{base}/api/scheduler/executions",
                params={"job_id": "sleepy", "status": "skipped"},
                timeout=5,
            ).json()
            return bool(found["total"])

        wait_for(skipped, 10, "the scheduled fire of the busy job to be skipped")
        requests.post(
            f"{base}/api/scheduler/executions/{running['execution_id']}/cancel", timeout=5
        )
        wait_for(lambda: "execution_failed job_id=sleepy" in service.output(), 10, "the cancel")
    finally:
        assert service.terminate() == 0
    lines = [line for line in service.output().splitlines() if line.startswith("time=")]
    entries = [parse_key_values(line) for line in lines]
    assert all({"time", "level", "logger", "msg"} <= e.keys() for e in entries)
    # `cronwell serve` takes what start-up built out of the collector's passes
    assert any("objects frozen out of the collector" in e["msg"] for e in entries)

    for kind in ("job_added", "job_modified", "job_paused", "job_resumed", "job_removed"):
        (line,) = events(entries, kind, job_id=job)
        assert line["logger"] == "cronwell.events"
    assert events(entries, "job_added", job_id="ok")[0]["trigger"].startswith("date[")
    (manual,) = events(entries, "execution_executed", job_id=job)
    assert manual["execution_id"] == run["execution_id"] and manual["reason"] == "manual"
    (submitted,) = events(entries, "execution_submitted", job_id="ok")
    (completed,) = events(entries, "execution_executed", job_id="ok")
    assert completed["execution_id"] == submitted["execution_id"]
    assert completed["status"] == "completed" and completed["exit_code"] == "0"
    assert float(completed["duration_s"]) >= 0
    (failed,) = events(entries, "execution_failed", job_id="bad")
    assert failed["status"] == "failed" and failed["exit_code"] == "3"
    assert failed["level"] == "WARNING" and failed["error"]
    (skip,) = events(entries, "max_instances_reached", job_id="sleepy")
    assert skip["status"] == "skipped" and skip["execution_id"] != running["execution_id"]
    (cancelled,) = events(entries, "execution_failed", job_id="sleepy")
    assert cancelled["status"] == "cancelled"
    assert cancelled["execution_id"] == running["execution_id"]
    (serving,) = [e for e in entries if e["msg"] == "serving"]
    assert serving["url"] == service.url and serving["backend"] == "sqlite"


def test_json_lines_with_missed_fires_and_no_passwords(tmp_path: Path) -> None:
    root = tmp_path / "scripts"
    root.mkdir()
    ok = write_script(root, "ok.sh", "#!/bin/bash\necho ok\n")
    service = ServeProcess(
        # a store URL carrying a password (the memory store ignores it) must be masked
        ["--store", "memory://ops:hunter2-store@local", "--script-root", str(root)],
        tmp_path / "serve.log",
        env={
            "CRONWELL_LOG_JSON": "1",
            "CRONWELL_DATA_DIR": str(tmp_path / "data"),
            # no grace: a fire that is late at all is recorded missed, not run
            "CRONWELL_MISFIRE_GRACE": "0",
            "CRONWELL_SMTP_PASSWORD": "hunter2-smtp",
        },
        cwd=tmp_path,
    ).wait_healthy()
    base = service.url
    try:
        user = requests.post(
            f"{base}/api/users/", json={"name": "Ops", "email": "ops@example.com"}, timeout=5
        ).json()["user_id"]
        server = {
            "user_id": user,
            "name": "db",
            "hostname": "127.0.0.1",
            "port": 1,
            "password": "hunter2-server",
        }
        created = requests.post(f"{base}/api/servers/create", json=server, timeout=5)
        assert created.status_code == 200, created.text
        # paused before its date and resumed after it: the fire is due in the past,
        # which the misfire policy records as missed
        schedule_script(base, "late", ok, soon(1.0))
        assert requests.put(f"{base}/api/pause-job/late", timeout=5).status_code == 200
        time.sleep(1.3)
        assert requests.put(f"{base}/api/resume-job/late", timeout=5).status_code == 200
        missed = finished_execution(base, "late")
        assert missed["status"] == "missed"
    finally:
        assert service.terminate() == 0
    text = service.output()
    assert "hunter2" not in text
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    (serving,) = [e for e in entries if e["message"] == "serving"]
    assert serving["store"] == "memory://ops:***@local"
    (line,) = events(entries, "job_missed", job_id="late")
    assert line["execution_id"] == missed["_id"] and line["status"] == "missed"
    assert line["level"] == "WARNING" and "misfire_grace_time" in line["error"]
    assert events(entries, "job_added", job_id="late")[0]["logger"] == "cronwell.events"
