"""History retention through the service: `history_limit` on create and update (and on
a scripts-surface job), refused values in the scheduler envelope, enforced in the
background while the service runs; `CRONWELL_HISTORY_DAYS` applied to a store that
already holds old history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.model import Status
from stores.sqlite import SqliteStore
from tests.api_support import (
    BASH_ECHO,
    ThreadServer,
    make_settings,
    new_user,
    running_server,
    serve_module,
    wait_for,
)
from tests.test_api_schedules import call, created, future, refused, update
from tests.test_store_contract import make_execution, make_job


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    yield from serve_module(tmp_path_factory, "retention_api", {"hello.sh": BASH_ECHO})


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    return new_user(server)


def total(server: ThreadServer, job_id: str) -> int:
    count: int = call(server, "GET", "/api/scheduler/executions", job_id=job_id).json()["total"]
    return count


def test_history_limit_on_create_and_update(server: ThreadServer, user_id: str) -> None:
    data = created(server, user_id, cron="@daily", history_limit=2)
    assert data["history_limit"] == 2
    job_id = data["_id"]
    assert update(server, job_id, history_limit=5).json()["data"]["history_limit"] == 5
    assert update(server, job_id, history_limit=None).json()["data"]["history_limit"] is None
    for value, message in (
        (0, "history_limit must be at least 1"),
        ("3", "history_limit must be an integer"),
        (2.5, "history_limit must be an integer"),
    ):
        assert refused(update(server, job_id, history_limit=value), 422) == message
    assert created(server, user_id, cron="@daily")["history_limit"] is None  # keep all


def test_the_service_trims_to_the_limit_in_the_background(
    server: ThreadServer, user_id: str
) -> None:
    job_id = created(server, user_id, cron="@daily", history_limit=2)["_id"]
    for _ in range(4):
        assert call(server, "POST", f"/api/scheduler/jobs/{job_id}/run").status_code == 200
    wait_for(lambda: total(server, job_id) == 2, 15, "the history to be trimmed to 2")
    runs = call(server, "GET", "/api/scheduler/executions", job_id=job_id).json()["data"]
    assert all(run["status"] == "completed" for run in runs)


def test_a_scripts_job_takes_a_limit_on_the_scheduler_surface(server: ThreadServer) -> None:
    path = str(server.app.ctx.settings.script_roots[0] / "hello.sh")
    body = {"job_id": "limited_script", "job_type": "bash", "script_path": path}
    response = call(
        server, "POST", "/api/schedule-job", {**body, "run_date": future(days=1).isoformat()}
    )
    assert response.status_code == 200, response.text
    assert update(server, "limited_script", history_limit=1).status_code == 200
    for _ in range(3):
        assert call(server, "POST", "/api/scheduler/jobs/limited_script/run").status_code == 200
    wait_for(lambda: total(server, "limited_script") == 1, 15, "the script's history to be trimmed")


def test_history_limit_is_in_the_openapi_document(server: ThreadServer) -> None:
    spec = call(server, "GET", "/openapi.json").json()
    body = spec["paths"]["/api/scheduler/jobs"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert body["schema"]["properties"]["history_limit"]["minimum"] == 1


def test_history_days_clears_old_history_once_the_service_runs(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cronwell.db")
    store.open()
    job = make_job(paused=True, next_run_time=None)  # a job that will not fire meanwhile
    store.add_job(job)
    now = datetime.now(UTC)
    old = make_execution(job, at=now - timedelta(days=10), status=Status.COMPLETED)
    waiting = now + timedelta(days=1)  # a retry made 10 days ago, due tomorrow: active
    old_retry = make_execution(
        job, at=now - timedelta(days=10), status=Status.SCHEDULED, scheduled_for=waiting
    )
    recent = make_execution(job, at=now - timedelta(days=1), status=Status.FAILED)
    for execution in (old, old_retry, recent):
        store.add_execution(execution)
    settings = make_settings(tmp_path, extra={"history_days": 7})
    with running_server(settings, store) as live:

        def remaining() -> set[str]:
            data = call(live, "GET", "/api/scheduler/executions", job_id=job.id).json()["data"]
            return {e["_id"] for e in data}

        wait_for(lambda: old.id not in remaining(), 15, "the 10-day-old execution to go")
        assert remaining() == {old_retry.id, recent.id}
    store.close()
