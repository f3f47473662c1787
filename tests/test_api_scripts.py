"""The scripts surface against a real server on loopback over a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api_support import (
    BASH_ECHO,
    PYTHON_MAIN,
    ThreadServer,
    finished_execution,
    make_settings,
    running_server,
    write_script,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("scripts_api")
    with running_server(make_settings(tmp)) as live:
        yield live


@pytest.fixture(scope="module")
def root(server: ThreadServer) -> Path:
    path: Path = server.app.ctx.settings.script_roots[0]
    write_script(path, "backup.sh", BASH_ECHO)
    write_script(path, "process_data.py", PYTHON_MAIN, executable=False)
    write_script(path, "not_executable.sh", BASH_ECHO, executable=False)
    return path


def later(**delta: float) -> str:
    """A naive ISO run_date in the (UTC) configured zone, `delta` from now."""
    return (datetime.now(UTC) + timedelta(**delta)).replace(tzinfo=None).isoformat()


def schedule(server: ThreadServer, **body: Any) -> requests.Response:
    return requests.post(f"{server.url}/api/schedule-job", json=body, timeout=10)


def test_health(server: ThreadServer) -> None:
    response = requests.get(f"{server.url}/api/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "scheduler_running": True, "store": "ok"}


def test_schedule_get_list_exact_shapes(server: ThreadServer, root: Path) -> None:
    path = str(root / "backup.sh")
    response = schedule(
        server,
        job_id="shape_job",
        job_type="bash",
        script_path=path,
        run_date="2099-12-31T23:59:59",
        args=["--full", "--compress"],
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "message": "Job scheduled successfully",
        "job": {
            "job_id": "shape_job",
            "name": f"bash:{path}",
            "next_run_time": "2099-12-31T23:59:59+00:00",
            "job_type": "bash",
            "script_path": path,
            "args": ["--full", "--compress"],
        },
    }
    expected = {
        "job_id": "shape_job",
        "name": f"bash:{path}",
        "next_run_time": "2099-12-31T23:59:59+00:00",
        "trigger": "date[2099-12-31 23:59:59 UTC]",
        "executor": "default",
        "pending": False,
        "is_enabled": True,
        "is_paused": False,
        "schedule": {
            "kind": "date",
            "description": "once, at 2099-12-31 23:59:59 UTC",
            "run_date": "2099-12-31T23:59:59+00:00",
            "timezone": "UTC",
            "start_date": None,
            "end_date": None,
            "jitter_seconds": 0,
        },
        "overlap": "skip",
        "on_success": [],
        "on_failure": [],
        "notify": None,
    }
    got = requests.get(f"{server.url}/api/job/shape_job", timeout=5)
    assert got.status_code == 200
    assert got.json() == {"job": expected}
    listing = requests.get(f"{server.url}/api/jobs", timeout=5).json()
    assert listing["count"] == len(listing["jobs"])
    assert expected in listing["jobs"]


def test_offset_run_date_is_kept_as_the_instant(server: ThreadServer, root: Path) -> None:
    response = schedule(
        server,
        job_id="offset_job",
        job_type="bash",
        script_path=str(root / "backup.sh"),
        run_date="2099-06-01T12:00:00+02:00",
    )
    assert response.status_code == 200, response.text
    assert response.json()["job"]["next_run_time"] == "2099-06-01T10:00:00+00:00"
    assert response.json()["job"]["args"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"job_id": "a", "job_type": "bash", "script_path": "/x"},
            "Missing required fields: run_date",
        ),
        ({"job_id": "a"}, "Missing required fields: job_type, script_path, run_date"),
        ({}, "Missing required fields: job_id, job_type, script_path, run_date"),
    ],
)
def test_missing_fields(server: ThreadServer, body: dict[str, Any], message: str) -> None:
    response = schedule(server, **body)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_validation_errors_are_400_with_clear_messages(server: ThreadServer, root: Path) -> None:
    good = {
        "job_id": "v_job",
        "job_type": "bash",
        "script_path": str(root / "backup.sh"),
        "run_date": later(days=1),
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"colour": "red"}, "Unknown fields: colour"),
        ({"job_type": "perl"}, "job_type must be 'bash' or 'python'"),
        ({"run_date": "tomorrow"}, "run_date is not an ISO 8601 datetime"),
        ({"run_date": "2024-12-31T23:59:59"}, "is in the past"),
        ({"args": "--full"}, "args must be a list of strings"),
        ({"args": [1, 2]}, "args must be a list of strings"),
        ({"replace_existing": "yes"}, "replace_existing must be true or false"),
        ({"job_id": 7}, "job_id must be a string"),
        ({"job_id": "has space"}, "job_id may hold only"),
        ({"job_id": "a/b"}, "job_id may hold only"),
        ({"script_path": "/etc/passwd"}, "outside the script roots"),
        ({"script_path": "relative.sh"}, "must be absolute"),
        ({"script_path": str(root / "missing.sh")}, "does not exist"),
        ({"script_path": str(root / "not_executable.sh")}, "not executable"),
        ({"script_path": str(root)}, "not a regular file"),
    ]
    for change, fragment in cases:
        response = schedule(server, **{**good, **change})
        assert response.status_code == 400, (change, response.text)
        body = response.json()
        assert list(body) == ["error"], body
        assert fragment in body["error"], (change, body)
    assert requests.get(f"{server.url}/api/job/v_job", timeout=5).status_code == 404


def test_past_date_of_the_document_is_refused(server: ThreadServer, root: Path) -> None:
    response = schedule(
        server,
        job_id="data_backup_job_past",
        job_type="bash",
        script_path=str(root / "backup.sh"),
        run_date="2024-12-31T23:59:59",
        args=["--full", "--compress"],
    )
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("run_date 2024-12-31T23:59:59+00:00 is in the past")
    assert "schedule a time in the future" in message


def test_duplicate_is_409_and_replace_existing_replaces(server: ThreadServer, root: Path) -> None:
    body = {
        "job_id": "dup_job",
        "job_type": "bash",
        "script_path": str(root / "backup.sh"),
        "run_date": "2099-01-01T00:00:00",
    }
    assert schedule(server, **body).status_code == 200
    again = schedule(server, **body)
    assert again.status_code == 409
    assert again.json() == {
        "error": "Job already exists: dup_job (send replace_existing: true to replace it)"
    }
    replaced = schedule(
        server,
        **{
            **body,
            "run_date": "2099-02-01T00:00:00",
            "replace_existing": True,
            "job_type": "python",
            "script_path": str(root / "process_data.py"),
        },
    )
    assert replaced.status_code == 200, replaced.text
    job = requests.get(f"{server.url}/api/job/dup_job", timeout=5).json()["job"]
    assert job["next_run_time"] == "2099-02-01T00:00:00+00:00"
    assert job["name"] == f"python:{root / 'process_data.py'}"


def test_pause_resume_remove(server: ThreadServer, root: Path) -> None:
    assert (
        schedule(
            server,
            job_id="prr_job",
            job_type="bash",
            script_path=str(root / "backup.sh"),
            run_date="2099-03-01T08:00:00",
        ).status_code
        == 200
    )
    paused = requests.put(f"{server.url}/api/pause-job/prr_job", timeout=5)
    assert paused.status_code == 200
    assert paused.json() == {"message": "Job prr_job paused successfully"}
    job = requests.get(f"{server.url}/api/job/prr_job", timeout=5).json()["job"]
    assert job["next_run_time"] is None
    resumed = requests.put(f"{server.url}/api/resume-job/prr_job", timeout=5)
    assert resumed.json() == {"message": "Job prr_job resumed successfully"}
    job = requests.get(f"{server.url}/api/job/prr_job", timeout=5).json()["job"]
    assert job["next_run_time"] == "2099-03-01T08:00:00+00:00"
    removed = requests.delete(f"{server.url}/api/remove-job/prr_job", timeout=5)
    assert removed.status_code == 200
    assert removed.json() == {"message": "Job prr_job removed successfully"}
    gone = requests.get(f"{server.url}/api/job/prr_job", timeout=5)
    assert gone.status_code == 404
    assert gone.json() == {"error": "Job not found: prr_job"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/job/nope"),
        ("DELETE", "/api/remove-job/nope"),
        ("PUT", "/api/pause-job/nope"),
        ("PUT", "/api/resume-job/nope"),
    ],
)
def test_unknown_job_is_404(server: ThreadServer, method: str, path: str) -> None:
    response = requests.request(method, server.url + path, timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "Job not found: nope"}


def test_scheduled_scripts_really_run(server: ThreadServer, root: Path) -> None:
    bash = schedule(
        server,
        job_id="run_bash",
        job_type="bash",
        script_path=str(root / "backup.sh"),
        run_date=later(seconds=1),
        args=["--full", "--compress"],
    )
    python = schedule(
        server,
        job_id="run_python",
        job_type="python",
        script_path=str(root / "process_data.py"),
        run_date=later(seconds=1),
        args=["--dataset", "sales"],
    )
    assert bash.status_code == 200 and python.status_code == 200, (bash.text, python.text)
    done = finished_execution(server.url, "run_bash")
    assert done["status"] == "completed", done
    assert "Processing with arguments: --full --compress" in done["output"]
    assert done["exit_code"] == 0
    assert done["job_class_string"] == f"bash:{root / 'backup.sh'}"
    done = finished_execution(server.url, "run_python")
    assert done["status"] == "completed", done
    assert done["return_value"] == "Success"
    assert "Processing with arguments: ('--dataset', 'sales')" in done["output"]


def test_naive_run_date_means_the_configured_timezone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, timezone="Asia/Tokyo")
    write_script(settings.script_roots[0], "t.sh", BASH_ECHO)
    with running_server(settings) as live:
        response = schedule(
            live,
            job_id="tokyo",
            job_type="bash",
            script_path=str(settings.script_roots[0] / "t.sh"),
            run_date="2099-01-01T09:00:00",
        )
        assert response.status_code == 200, response.text
        assert response.json()["job"]["next_run_time"] == "2099-01-01T09:00:00+09:00"
        job = requests.get(f"{live.url}/api/job/tokyo", timeout=5).json()["job"]
        assert job["trigger"] == "date[2099-01-01 09:00:00 JST]"
