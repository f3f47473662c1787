"""The workflow fields over HTTP (issue 15): `overlap`, `on_success` / `on_failure` and
`notify` on create and update on both surfaces, refused in each surface's envelope,
stored (the service runs on SQLite here), and in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_support import BASH_ECHO, ThreadServer, new_user, serve_module
from tests.test_api_schedules import call, created, future, job, refused, update


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    yield from serve_module(tmp_path_factory, "workflow_api", {"hello.sh": BASH_ECHO})


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    return new_user(server)


def schedule_script(server: ThreadServer, job_id: str, **extra: Any) -> Any:
    path = str(server.app.ctx.settings.script_roots[0] / "hello.sh")
    body = {
        "job_id": job_id,
        "job_type": "bash",
        "script_path": path,
        "run_date": future(days=1).isoformat(),
        **extra,
    }
    return call(server, "POST", "/api/schedule-job", body)


# -- overlap -----------------------------------------------------------------------------


def test_overlap_on_create_and_update(server: ThreadServer, user_id: str) -> None:
    data = created(server, user_id, cron="@daily")
    assert data["overlap"] == "skip"  # the default
    job_id = data["_id"]
    for policy in ("queue", "replace", "allow", "skip"):
        response = update(server, job_id, overlap=policy)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["overlap"] == policy
        stored = server.app.ctx.store.get_job(job_id)
        assert stored.overlap == policy
    assert created(server, user_id, cron="@daily", overlap="queue")["overlap"] == "queue"


def test_a_bad_overlap_is_refused_in_each_surface_envelope(
    server: ThreadServer, user_id: str
) -> None:
    job_id = created(server, user_id, cron="@daily")["_id"]
    message = refused(update(server, job_id, overlap="sometimes"), 422)
    assert message == "overlap must be one of skip, queue, replace, allow, not 'sometimes'"
    assert refused(update(server, job_id, overlap=3), 422) == "overlap must be a string"
    scripts = refused(schedule_script(server, "bad_overlap", overlap="later"), 400, key="error")
    assert scripts.startswith("overlap must be one of")


def test_a_scripts_job_takes_overlap_on_create_and_on_the_scheduler_surface(
    server: ThreadServer,
) -> None:
    response = schedule_script(server, "overlapping_script", overlap="queue")
    assert response.status_code == 200, response.text
    assert call(server, "GET", "/api/job/overlapping_script").json()["job"]["overlap"] == "queue"
    assert update(server, "overlapping_script", overlap="replace").status_code == 200
    assert job(server, "overlapping_script")["overlap"] == "replace"


def test_workflow_fields_are_in_the_openapi_document(server: ThreadServer) -> None:
    spec = call(server, "GET", "/openapi.json").json()
    for path, method in (
        ("/api/scheduler/jobs", "post"),
        ("/api/scheduler/jobs/{job_id}", "put"),
        ("/api/schedule-job", "post"),
    ):
        schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]
        properties = schema["schema"]["properties"]
        assert {"overlap", "on_success", "on_failure", "notify"} <= set(properties), path
        assert "replace" in properties["overlap"]["description"]
