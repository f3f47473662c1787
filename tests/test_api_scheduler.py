"""Scheduler jobs, executions, available jobs, stats and health, over a real server;
and one job seen, paused, resumed and removed through both surfaces."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.ids import is_object_id
from jobs.registry import BUILTIN_JOBS
from tests.api_support import (
    BASH_ECHO,
    ThreadServer,
    make_settings,
    running_server,
    wait_for,
    write_script,
)

MISSING_ID = "0123456789abcdef01234567"
CRON_NAMES = ("minute", "hour", "day_of_month", "month", "day_of_week", "week")
JOB_FIELDS = [
    "_id",
    "user_id",
    "job_class_string",
    "name",
    "description",
    "minute",
    "hour",
    "day_of_month",
    "month",
    "day_of_week",
    "week",
    "cron",
    "interval_seconds",
    "run_date",
    "start_date",
    "end_date",
    "jitter_seconds",
    "pub_args",
    "pub_kwargs",
    "is_enabled",
    "is_paused",
    "created_at",
    "updated_at",
    "last_run_time",
    "next_run_time",
    "total_executions",
    "timezone",
    "job_type",
    "timeout",
    "max_instances",
    "misfire_grace_time",
    "coalesce",
    "retries",
    "retry_delay",
    "retry_backoff",
    "history_limit",
    "overlap",
    "on_success",
    "on_failure",
    "notify",
    "schedule",
    "env",
]
EXECUTION_FIELDS = {
    "_id",
    "job_id",
    "user_id",
    "job_name",
    "job_class_string",
    "status",
    "output",
    "error",
    "started_at",
    "completed_at",
    "created_at",
    "return_value",
    "exit_code",
    "duration_seconds",
    "attempt",
    "retry_of",
    "reason",
    "scheduled_for",
    "node",
    "overlap_decision",
    "triggered_by",
    "chained",
    "notifications",
}
SEED_JOB = {
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
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("scheduler_api")
    with running_server(make_settings(tmp)) as live:
        yield live


def call(
    server: ThreadServer, method: str, path: str, body: Any = None, **params: Any
) -> requests.Response:
    return requests.request(method, server.url + path, json=body, params=params or None, timeout=10)


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    response = call(server, "POST", "/api/users/", {"name": "Owner", "email": "owner@example.com"})
    value: str = response.json()["user_id"]
    return value


def create(server: ThreadServer, user_id: str, **change: Any) -> str:
    response = call(
        server, "POST", "/api/scheduler/jobs", {"user_id": user_id, **SEED_JOB, **change}
    )
    assert response.status_code == 200, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def wait_execution(server: ThreadServer, execution_id: str, timeout: float = 15) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        data: dict[str, Any] = call(
            server, "GET", f"/api/scheduler/executions/{execution_id}"
        ).json()["data"]
        return data if data["status"] not in ("queued", "running", "scheduled") else None

    return wait_for(finished, timeout, f"execution {execution_id} to finish")


def test_create_get_list_exact_fields(server: ThreadServer, user_id: str) -> None:
    response = call(server, "POST", "/api/scheduler/jobs", {"user_id": user_id, **SEED_JOB})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["message"] == "Job 'Daily Echo Job' created successfully"
    job_id = body["job_id"]
    assert is_object_id(job_id)
    got = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()
    assert got["message"] == "Job retrieved successfully"
    job = got["data"]
    assert list(job) == JOB_FIELDS
    assert {k: job[k] for k in SEED_JOB} == SEED_JOB
    assert job["week"] == "*" and job["user_id"] == user_id
    assert job["is_enabled"] is True and job["is_paused"] is False
    assert job["total_executions"] == 0 and job["last_run_time"] is None
    assert job["timezone"] == "UTC" and job["job_type"] == "class"
    next_run = datetime.fromisoformat(job["next_run_time"])
    assert (next_run.hour, next_run.minute, next_run.second) == (9, 0, 0)
    assert next_run > datetime.now(UTC)
    listed = call(server, "GET", "/api/scheduler/jobs").json()
    assert listed["message"] == "Jobs retrieved successfully"
    assert listed["total"] == len(listed["data"]) and job in listed["data"]
    mine = call(server, "GET", f"/api/scheduler/users/{user_id}/jobs").json()
    assert job in mine["data"] and all(j["user_id"] == user_id for j in mine["data"])


def test_timezone_and_week(server: ThreadServer, user_id: str) -> None:
    job_id = create(server, user_id, timezone="America/New_York", week="*", hour=9, minute=30)
    job = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    assert job["timezone"] == "America/New_York" and (job["hour"], job["minute"]) == ("9", "30")
    local = datetime.fromisoformat(job["next_run_time"]).astimezone(
        __import__("zoneinfo").ZoneInfo("America/New_York")
    )
    assert (local.hour, local.minute) == (9, 30)


def test_update_reschedules_and_keeps_other_fields(server: ThreadServer, user_id: str) -> None:
    job_id = create(server, user_id)
    before = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    response = call(
        server,
        "PUT",
        f"/api/scheduler/jobs/{job_id}",
        {
            "name": "Updated Echo Job",
            "description": "Updated description",
            "minute": "*/5",
            "hour": "*",
            "is_enabled": True,
        },
    )
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in ("status", "message", "job_id")} == {
        "status": "success",
        "message": "Job updated successfully",
        "job_id": job_id,
    }
    after = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    assert (after["name"], after["minute"], after["hour"]) == ("Updated Echo Job", "*/5", "*")
    assert after["pub_args"] == before["pub_args"] and after["day_of_month"] == "*"
    next_run = datetime.fromisoformat(after["next_run_time"])
    assert next_run.minute % 5 == 0
    assert (next_run - datetime.now(UTC)).total_seconds() <= 5 * 60


def test_pause_resume_delete(server: ThreadServer, user_id: str) -> None:
    job_id = create(server, user_id)
    paused = call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/pause")
    assert paused.json() == {
        "status": "success",
        "message": "Job paused successfully",
        "job_id": job_id,
    }
    job = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    assert job["is_paused"] is True and job["next_run_time"] is None
    resumed = call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/resume")
    assert resumed.json() == {
        "status": "success",
        "message": "Job resumed successfully",
        "job_id": job_id,
    }
    job = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    assert job["is_paused"] is False and job["next_run_time"] is not None
    deleted = call(server, "DELETE", f"/api/scheduler/jobs/{job_id}")
    assert deleted.json() == {
        "status": "success",
        "message": "Job deleted successfully",
        "job_id": job_id,
    }
    assert call(server, "GET", f"/api/scheduler/jobs/{job_id}").json() == {
        "detail": f"Job not found: {job_id}"
    }


def test_run_now_records_an_execution(server: ThreadServer, user_id: str) -> None:
    job_id = create(server, user_id)
    run = call(server, "POST", f"/api/scheduler/jobs/{job_id}/run")
    assert run.status_code == 200
    body = run.json()
    assert (body["status"], body["message"]) == ("success", "Job execution started")
    execution = wait_execution(server, body["execution_id"])
    assert set(execution) == EXECUTION_FIELDS
    assert execution["status"] == "completed", execution
    assert execution["job_id"] == job_id and execution["user_id"] == user_id
    assert execution["job_name"] == "Daily Echo Job"
    assert execution["job_class_string"] == "jobs.echo.EchoJob"
    assert "arg1" in execution["output"] and execution["error"] == ""
    assert execution["started_at"] and execution["completed_at"] and execution["created_at"]
    assert execution["duration_seconds"] >= 0 and execution["reason"] == "manual"
    job = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    assert job["total_executions"] == 1 and job["last_run_time"] is not None
    listed = call(server, "GET", "/api/scheduler/executions", job_id=job_id).json()
    assert listed["message"] == "Executions retrieved successfully"
    assert listed["total"] == 1 and listed["data"] == [execution]


def test_execution_list_filters_pages_and_counts(server: ThreadServer, user_id: str) -> None:
    job_id = create(server, user_id)
    ids = [
        call(server, "POST", f"/api/scheduler/jobs/{job_id}/run").json()["execution_id"]
        for _ in range(3)
    ]
    for execution_id in ids:
        wait_execution(server, execution_id)
    page = call(server, "GET", "/api/scheduler/executions", job_id=job_id, limit=2).json()
    assert page["total"] == 3 and len(page["data"]) == 2
    assert [e["_id"] for e in page["data"]] == ids[::-1][:2]  # newest first
    rest = call(server, "GET", "/api/scheduler/executions", job_id=job_id, limit=2, offset=2).json()
    assert [e["_id"] for e in rest["data"]] == [ids[0]]
    done = call(
        server, "GET", "/api/scheduler/executions", job_id=job_id, status="completed"
    ).json()
    assert done["total"] == 3
    failed = call(server, "GET", "/api/scheduler/executions", job_id=job_id, status="failed").json()
    assert failed["total"] == 0 and failed["data"] == []
    by_user = call(server, "GET", "/api/scheduler/executions", user_id=user_id).json()
    assert by_user["total"] >= 3 and all(e["user_id"] == user_id for e in by_user["data"])


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"limit": 0}, "limit must be at least 1"),
        ({"limit": 5000}, "limit must be at most 1000"),
        ({"offset": -1}, "offset must be at least 0"),
        ({"status": "weird"}, "Unknown status 'weird'"),
        ({"user_id": "nothex"}, "Invalid user id"),
        ({"job_id": "bad id!"}, "Invalid job id"),
        ({"jobid": "x"}, "Unknown query parameter: jobid"),
    ],
)
def test_execution_query_errors(
    server: ThreadServer, params: dict[str, Any], fragment: str
) -> None:
    response = call(server, "GET", "/api/scheduler/executions", **params)
    assert response.status_code == 400
    assert fragment in response.json()["detail"]


def test_execution_lookup_and_cancel_errors(server: ThreadServer, user_id: str) -> None:
    assert call(server, "GET", "/api/scheduler/executions/xyz").status_code == 400
    missing = call(server, "GET", f"/api/scheduler/executions/{MISSING_ID}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"Execution not found: {MISSING_ID}"}
    assert call(server, "POST", f"/api/scheduler/executions/{MISSING_ID}/cancel").status_code == 404
    assert call(server, "POST", "/api/scheduler/executions/xyz/cancel").status_code == 400
    job_id = create(server, user_id)
    execution_id = call(server, "POST", f"/api/scheduler/jobs/{job_id}/run").json()["execution_id"]
    wait_execution(server, execution_id)
    late = call(server, "POST", f"/api/scheduler/executions/{execution_id}/cancel")
    assert late.status_code == 409
    assert "completed" in late.json()["detail"]


def test_cancel_a_running_script(server: ThreadServer) -> None:
    root: Path = server.app.ctx.settings.script_roots[0]
    write_script(root, "sleepy.sh", "#!/bin/bash\necho started\nsleep 30\n")
    scheduled = requests.post(
        f"{server.url}/api/schedule-job",
        json={
            "job_id": "sleepy",
            "job_type": "bash",
            "script_path": str(root / "sleepy.sh"),
            "run_date": "2099-01-01T00:00:00",
        },
        timeout=5,
    )
    assert scheduled.status_code == 200, scheduled.text
    execution_id = call(server, "POST", "/api/scheduler/jobs/sleepy/run").json()["execution_id"]

    def running() -> bool:
        data = call(server, "GET", f"/api/scheduler/executions/{execution_id}").json()["data"]
        return bool(data["status"] == "running")

    wait_for(running, 10, "the script to start")
    cancelled = call(server, "POST", f"/api/scheduler/executions/{execution_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["execution_id"] == execution_id
    final = wait_execution(server, execution_id, timeout=10)
    assert final["status"] == "cancelled"


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"minute": "61"}, 422, "minute"),
        ({"day_of_week": "funday"}, 422, "day_of_week"),
        ({"week": "60"}, 422, "week"),
        ({"timezone": "Mars/Base"}, 422, "timezone"),
        ({"name": 12}, 422, "name must be a string"),
        ({"pub_args": "arg1"}, 422, "pub_args must be a list"),
        ({"pub_kwargs": ["k"]}, 422, "pub_kwargs must be an object"),
        ({"is_enabled": "yes"}, 422, "is_enabled must be true or false"),
        ({"minute": True}, 422, "minute must be a string"),
        ({"job_class_string": "jobs.nope.NopeJob"}, 400, "Unknown job class jobs.nope.NopeJob"),
        ({"job_class_string": "os.path"}, 400, "os.path"),
        ({"user_id": "nothex"}, 400, "Invalid user id"),
        ({"user_id": MISSING_ID}, 404, f"User not found: {MISSING_ID}"),
        (
            {"cron": "* * * * *"},
            400,
            (
                "Send exactly one schedule, not minute, hour, day_of_month, month, day_of_week "
                "and cron"
            ),
        ),
        (
            {"job_class_string": "jobs.email.EmailNotificationJob", "pub_args": []},
            422,
            "jobs.email.EmailNotificationJob needs pub_args[0]: recipient",
        ),
    ],
)
def test_create_validation(
    server: ThreadServer, user_id: str, change: dict[str, Any], status: int, fragment: str
) -> None:
    before = call(server, "GET", "/api/scheduler/jobs").json()["total"]
    response = call(
        server, "POST", "/api/scheduler/jobs", {"user_id": user_id, **SEED_JOB, **change}
    )
    assert response.status_code == status, response.text
    assert list(response.json()) == ["detail"]
    assert fragment in response.json()["detail"]
    assert call(server, "GET", "/api/scheduler/jobs").json()["total"] == before


def test_create_missing_fields(server: ThreadServer) -> None:
    one = call(
        server,
        "POST",
        "/api/scheduler/jobs",
        {k: v for k, v in {**SEED_JOB, "user_id": MISSING_ID}.items() if k != "name"},
    )
    assert one.status_code == 400
    assert one.json() == {"detail": "Missing required field: name"}
    many = call(server, "POST", "/api/scheduler/jobs", {"name": "x"})
    assert many.json() == {"detail": "Missing required fields: user_id, job_class_string"}
    no_schedule = {k: v for k, v in SEED_JOB.items() if k not in CRON_NAMES}
    unscheduled = call(
        server, "POST", "/api/scheduler/jobs", {**no_schedule, "user_id": MISSING_ID}
    )
    assert unscheduled.status_code == 400
    assert unscheduled.json() == {
        "detail": "Missing schedule: send the cron fields (at least minute and hour), cron, "
        "interval_seconds or run_date"
    }
    no_hour = {k: v for k, v in SEED_JOB.items() if k != "hour"}
    half = call(server, "POST", "/api/scheduler/jobs", {**no_hour, "user_id": MISSING_ID})
    assert half.status_code == 400 and half.json() == {"detail": "Missing required field: hour"}


def test_job_id_and_update_errors(server: ThreadServer, user_id: str) -> None:
    for method, suffix in (
        ("GET", ""),
        ("PUT", ""),
        ("DELETE", ""),
        ("PATCH", "/pause"),
        ("PATCH", "/resume"),
        ("POST", "/run"),
    ):
        bad = call(server, method, f"/api/scheduler/jobs/bad id!{suffix}", {"name": "x"})
        assert bad.status_code == 400, (method, suffix, bad.text)
        assert bad.json()["detail"].startswith("Invalid job id")
        missing = call(server, method, f"/api/scheduler/jobs/{MISSING_ID}{suffix}", {"name": "x"})
        assert missing.status_code == 404, (method, suffix)
        assert missing.json() == {"detail": f"Job not found: {MISSING_ID}"}
    job_id = create(server, user_id)
    before = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    for body, status in (
        ({}, 400),
        ({"minute": "99"}, 422),
        ({"hour": "x"}, 422),
        ({"job_class_string": "nope.Nope"}, 400),
        ({"user_id": MISSING_ID}, 404),
        ({"is_paused": True}, 400),
        ({"job_class_string": "jobs.webhook.WebhookJob", "pub_args": []}, 422),
        ({"pub_kwargs": "x"}, 422),
        ({"name": "ok", "minute": "77"}, 422),  # nothing applied when any field is bad
        (b"{oops", 400),
        (b"[]", 400),
    ):
        if isinstance(body, bytes):
            response = requests.put(
                f"{server.url}/api/scheduler/jobs/{job_id}", data=body, timeout=5
            )
        else:
            response = call(server, "PUT", f"/api/scheduler/jobs/{job_id}", body)
        assert response.status_code == status, (body, response.text)
    assert call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"] == before
    assert call(server, "GET", "/api/scheduler/users/nothex/jobs").status_code == 400
    assert call(server, "GET", f"/api/scheduler/users/{MISSING_ID}/jobs").status_code == 404


def test_available_jobs(server: ThreadServer) -> None:
    body = call(server, "GET", "/api/scheduler/available-jobs").json()
    assert body["status"] == "success"
    assert body["message"] == "Available jobs retrieved successfully"
    assert body["total"] == 10 == len(body["jobs"])
    assert [j["class_string"] for j in body["jobs"]] == list(BUILTIN_JOBS)
    echo = body["jobs"][0]
    assert (echo["name"], echo["description"]) == ("EchoJob", "Simple job that echoes arguments")


def test_stats_count_from_the_store(server: ThreadServer) -> None:
    owner = call(
        server, "POST", "/api/users/", {"name": "Stats", "email": "stats@example.com"}
    ).json()["user_id"]
    empty = call(server, "GET", "/api/scheduler/stats", user_id=owner).json()
    assert empty["message"] == "Stats retrieved successfully"
    assert empty["stats"]["total_jobs"] == 0 and empty["stats"]["success_rate"] == 0
    first = create(server, owner)
    second = create(server, owner)
    call(server, "PATCH", f"/api/scheduler/jobs/{second}/pause")
    for _ in range(2):
        wait_execution(
            server, call(server, "POST", f"/api/scheduler/jobs/{first}/run").json()["execution_id"]
        )
    stats = call(server, "GET", "/api/scheduler/stats", user_id=owner).json()["stats"]
    assert {
        k: stats[k]
        for k in (
            "total_jobs",
            "enabled_jobs",
            "paused_jobs",
            "total_executions",
            "completed_executions",
            "failed_executions",
            "success_rate",
        )
    } == {
        "total_jobs": 2,
        "enabled_jobs": 2,
        "paused_jobs": 1,
        "total_executions": 2,
        "completed_executions": 2,
        "failed_executions": 0,
        "success_rate": 100.0,
    }
    everyone = call(server, "GET", "/api/scheduler/stats").json()["stats"]
    assert everyone["total_jobs"] >= 2
    assert call(server, "GET", "/api/scheduler/stats", user_id="zz").status_code == 400
    assert call(server, "GET", "/api/scheduler/stats", user_id=MISSING_ID).status_code == 404


def test_scheduler_health(server: ThreadServer) -> None:
    body = call(server, "GET", "/api/scheduler/health").json()
    assert (body["status"], body["message"]) == ("healthy", "Scheduler is running")
    assert abs((datetime.fromisoformat(body["timestamp"]) - datetime.now(UTC)).total_seconds()) < 60


def test_one_job_two_views(server: ThreadServer, user_id: str) -> None:
    root: Path = server.app.ctx.settings.script_roots[0]
    script = write_script(root, "both.sh", BASH_ECHO)
    scheduled = requests.post(
        f"{server.url}/api/schedule-job",
        json={
            "job_id": "both_views",
            "job_type": "bash",
            "script_path": str(script),
            "run_date": "2099-05-05T05:05:05",
            "args": ["a"],
        },
        timeout=5,
    )
    assert scheduled.status_code == 200
    # the scripts job on the scheduler surface
    seen = call(server, "GET", "/api/scheduler/jobs/both_views").json()["data"]
    assert seen["job_class_string"] == f"bash:{script}" and seen["job_type"] == "bash"
    assert seen["minute"] is None and seen["user_id"] is None and seen["pub_args"] == ["a"]
    assert seen["next_run_time"] == "2099-05-05T05:05:05+00:00"
    assert any(
        j["_id"] == "both_views" for j in call(server, "GET", "/api/scheduler/jobs").json()["data"]
    )
    assert call(server, "PATCH", "/api/scheduler/jobs/both_views/pause").status_code == 200
    assert (
        requests.get(f"{server.url}/api/job/both_views", timeout=5).json()["job"]["next_run_time"]
        is None
    )
    assert requests.put(f"{server.url}/api/resume-job/both_views", timeout=5).status_code == 200
    assert (
        call(server, "GET", "/api/scheduler/jobs/both_views").json()["data"]["is_paused"] is False
    )
    refused = call(server, "PUT", "/api/scheduler/jobs/both_views", {"minute": "5"})
    assert refused.status_code == 400 and "one-off bash script job" in refused.json()["detail"]
    renamed = call(server, "PUT", "/api/scheduler/jobs/both_views", {"description": "seen twice"})
    assert renamed.status_code == 200
    # its executions through the scheduler surface
    execution_id = call(server, "POST", "/api/scheduler/jobs/both_views/run").json()["execution_id"]
    done = wait_execution(server, execution_id)
    assert done["status"] == "completed" and "Processing with arguments: a" in done["output"]
    listed = call(server, "GET", "/api/scheduler/executions", job_id="both_views").json()
    assert [e["_id"] for e in listed["data"]] == [execution_id]
    # a scheduler job on the scripts surface, paused there and removed there
    class_job = create(server, user_id)
    view = requests.get(f"{server.url}/api/job/{class_job}", timeout=5).json()["job"]
    assert view["name"] == "class:jobs.echo.EchoJob"
    assert view["trigger"].startswith("cron[minute='0', hour='9'")
    assert requests.put(f"{server.url}/api/pause-job/{class_job}", timeout=5).status_code == 200
    assert (
        call(server, "GET", f"/api/scheduler/jobs/{class_job}").json()["data"]["is_paused"] is True
    )
    assert requests.delete(f"{server.url}/api/remove-job/{class_job}", timeout=5).status_code == 200
    assert call(server, "GET", f"/api/scheduler/jobs/{class_job}").status_code == 404
    assert call(server, "DELETE", "/api/scheduler/jobs/both_views").status_code == 200
    assert requests.get(f"{server.url}/api/job/both_views", timeout=5).status_code == 404


def test_policy_fields_default_set_and_update(server: ThreadServer, user_id: str) -> None:
    job_id = create(server, user_id)
    job = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    assert {k: job[k] for k in ("timeout", "max_instances", "coalesce", "retries")} == {
        "timeout": None,
        "max_instances": 1,
        "coalesce": True,
        "retries": 0,
    }
    assert job["retry_backoff"] == "fixed"
    policy = {
        "timeout": 2.5,
        "max_instances": 3,
        "misfire_grace_time": 5,
        "coalesce": False,
        "retries": 2,
        "retry_delay": 0.5,
        "retry_backoff": "exponential",
    }
    other = create(server, user_id, **policy)
    got = call(server, "GET", f"/api/scheduler/jobs/{other}").json()["data"]
    assert {k: got[k] for k in policy} == policy
    response = call(server, "PUT", f"/api/scheduler/jobs/{other}", {"timeout": 0, "retries": 0})
    assert response.status_code == 200, response.text
    got = call(server, "GET", f"/api/scheduler/jobs/{other}").json()["data"]
    assert got["timeout"] is None and got["retries"] == 0 and got["max_instances"] == 3


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("timeout", -1, "at least 0"),
        ("timeout", "10", "must be a number"),
        ("max_instances", 0, "at least 1"),
        ("retries", 1.5, "must be an integer"),
        ("retry_backoff", "linear", "fixed, exponential"),
        ("coalesce", "yes", "true or false"),
    ],
)
def test_policy_fields_refused_with_the_field_named(
    server: ThreadServer, user_id: str, field: str, value: Any, words: str
) -> None:
    before = call(server, "GET", "/api/scheduler/jobs").json()["total"]
    response = call(
        server, "POST", "/api/scheduler/jobs", {"user_id": user_id, **SEED_JOB, field: value}
    )
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"] and words in response.json()["detail"]
    assert call(server, "GET", "/api/scheduler/jobs").json()["total"] == before


def test_retries_set_over_http_make_linked_executions(server: ThreadServer, user_id: str) -> None:
    job_id = create(
        server,
        user_id,
        job_class_string="jobs.webhook.WebhookJob",
        pub_args=["ftp://not-allowed.example"],
        pub_kwargs={},
        retries=1,
        retry_delay=0,
    )
    first = call(server, "POST", f"/api/scheduler/jobs/{job_id}/run").json()["execution_id"]
    assert wait_execution(server, first)["status"] == "failed"

    def retried() -> dict[str, Any] | None:
        page = call(server, "GET", f"/api/scheduler/executions?job_id={job_id}").json()["data"]
        done = [e for e in page if e["retry_of"] == first and e["status"] == "failed"]
        return done[0] if done else None

    retry = wait_for(retried, 15, "the retry to run")
    assert retry["attempt"] == 2
