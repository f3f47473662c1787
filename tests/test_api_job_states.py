"""Disabled means disabled: the enabled / paused / disabled states the scheduler seed
lists, end to end on a real server, through both surfaces. Resuming a disabled job is a
409 saying to enable it; both surfaces show `is_enabled` and `is_paused`; a disabled
job never fires; next-runs says why a job has none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.api_support import BASH_ECHO, ThreadServer, new_user, serve_module
from tests.test_api_schedules import call, created, future


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    yield from serve_module(tmp_path_factory, "states_api", {"hello.sh": BASH_ECHO})


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    return new_user(server)


def views(server: ThreadServer, job_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job on the scheduler surface and on the scripts surface."""
    scheduler = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    scripts = call(server, "GET", f"/api/job/{job_id}").json()["job"]
    return scheduler, scripts


def state(server: ThreadServer, job_id: str) -> tuple[bool, bool, bool]:
    """(is_enabled, is_paused, has a next run), the same on both surfaces."""
    scheduler, scripts = views(server, job_id)
    shown = (
        scheduler["is_enabled"],
        scheduler["is_paused"],
        scheduler["next_run_time"] is not None,
    )
    assert (
        scripts["is_enabled"],
        scripts["is_paused"],
        scripts["next_run_time"] is not None,
    ) == shown
    return shown


def next_runs(server: ThreadServer, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = call(server, "GET", f"/api/scheduler/jobs/{job_id}/next-runs").json()
    return body


def enable(server: ThreadServer, job_id: str, value: bool) -> None:
    response = call(server, "PUT", f"/api/scheduler/jobs/{job_id}", {"is_enabled": value})
    assert response.status_code == 200, response.text


def resume_both(server: ThreadServer, job_id: str) -> tuple[requests.Response, requests.Response]:
    scheduler = call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/resume")
    scripts = call(server, "PUT", f"/api/resume-job/{job_id}")
    return scheduler, scripts


def assert_resume_refused(server: ThreadServer, job_id: str) -> None:
    expected = (
        f"Job {job_id} is disabled; enable it first (PUT /api/scheduler/jobs/{job_id} with "
        '{"is_enabled": true}), then resume it'
    )
    scheduler, scripts = resume_both(server, job_id)
    assert (scheduler.status_code, scheduler.json()) == (409, {"detail": expected})
    assert (scripts.status_code, scripts.json()) == (409, {"error": expected})


def test_every_state_and_every_way_between_them(server: ThreadServer, user_id: str) -> None:
    job_id = created(server, user_id, cron="@daily")["_id"]
    assert state(server, job_id) == (True, False, True)  # enabled, running
    assert next_runs(server, job_id)["total"] == 5

    assert call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/pause").status_code == 200
    assert state(server, job_id) == (True, True, False)  # paused
    paused = next_runs(server, job_id)
    assert paused["total"] == 0 and paused["data"] == [] and paused["is_paused"] is True
    assert paused["message"] == f"Job {job_id} is paused: it has no next runs until it is resumed"

    enable(server, job_id, False)
    assert state(server, job_id) == (False, True, False)  # paused and disabled
    assert_resume_refused(server, job_id)
    assert state(server, job_id) == (False, True, False)  # the refusal changed nothing

    enable(server, job_id, True)
    assert state(server, job_id) == (True, True, False)  # enabling does not resume
    assert call(server, "PUT", f"/api/resume-job/{job_id}").status_code == 200
    assert state(server, job_id) == (True, False, True)

    enable(server, job_id, False)
    assert state(server, job_id) == (False, False, False)  # disabled
    disabled = next_runs(server, job_id)
    assert disabled["total"] == 0 and disabled["is_enabled"] is False
    assert "is disabled" in disabled["message"] and "is_enabled" in disabled["message"]
    assert_resume_refused(server, job_id)
    run = call(server, "POST", f"/api/scheduler/jobs/{job_id}/run")  # an explicit request
    assert run.status_code == 200 and "execution_id" in run.json()
    enable(server, job_id, True)
    assert state(server, job_id) == (True, False, True)
    scheduler, scripts = resume_both(server, job_id)  # resuming a running job: a no-op
    assert scheduler.status_code == 200 and scripts.status_code == 200


def test_the_stats_count_the_states(server: ThreadServer, user_id: str) -> None:
    before = call(server, "GET", "/api/scheduler/stats", user_id=user_id).json()["stats"]
    paused_id = created(server, user_id, cron="@hourly")["_id"]
    call(server, "PATCH", f"/api/scheduler/jobs/{paused_id}/pause")
    disabled_id = created(server, user_id, cron="@hourly", is_enabled=False)["_id"]
    assert state(server, disabled_id) == (False, False, False)
    after = call(server, "GET", "/api/scheduler/stats", user_id=user_id).json()["stats"]
    assert after["total_jobs"] == before["total_jobs"] + 2
    assert after["enabled_jobs"] == before["enabled_jobs"] + 1
    assert after["paused_jobs"] == before["paused_jobs"] + 1


def executions(server: ThreadServer, job_id: str) -> int:
    total: int = call(server, "GET", "/api/scheduler/executions", job_id=job_id).json()["total"]
    return total


def wait_for_executions(server: ThreadServer, job_id: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while executions(server, job_id) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert executions(server, job_id) >= count


def test_a_disabled_job_never_fires_until_enabled(server: ThreadServer, user_id: str) -> None:
    job_id = created(server, user_id, interval_seconds=1, is_enabled=False)["_id"]
    # an enabled twin on the same trigger is the clock: each of its fires is one the
    # disabled job would have made, so the waits are as long as two fires, no longer
    twin = created(server, user_id, interval_seconds=1, name="enabled twin")["_id"]
    wait_for_executions(server, twin, 2)
    assert executions(server, job_id) == 0
    enable(server, job_id, True)
    wait_for_executions(server, job_id, 1)
    enable(server, job_id, False)
    time.sleep(0.5)  # a fire already armed may still finish
    settled = executions(server, job_id)
    wait_for_executions(server, twin, executions(server, twin) + 2)
    assert executions(server, job_id) == settled
    for removed in (job_id, twin):
        call(server, "DELETE", f"/api/scheduler/jobs/{removed}")


def test_a_scripts_job_disabled_on_the_scheduler_surface(server: ThreadServer) -> None:
    path = str(server.app.ctx.settings.script_roots[0] / "hello.sh")
    body = {"job_id": "states_script", "job_type": "bash", "script_path": path}
    response = call(
        server, "POST", "/api/schedule-job", {**body, "run_date": future(days=1).isoformat()}
    )
    assert response.status_code == 200, response.text
    assert state(server, "states_script") == (True, False, True)
    assert call(server, "PUT", "/api/pause-job/states_script").status_code == 200
    enable(server, "states_script", False)
    assert state(server, "states_script") == (False, True, False)
    assert_resume_refused(server, "states_script")
    enable(server, "states_script", True)
    assert call(server, "PUT", "/api/resume-job/states_script").status_code == 200
    assert state(server, "states_script") == (True, False, True)
