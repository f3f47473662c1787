"""The workflow fields over HTTP (issue 15): `overlap`, `on_success` / `on_failure` and
`notify` on create and update on both surfaces, refused in each surface's envelope,
stored (the service runs on SQLite here), and in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_support import BASH_ECHO, ThreadServer, new_user, serve_module, wait_for
from tests.test_api_schedules import call, created, future, job, refused, update


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    yield from serve_module(
        tmp_path_factory, "workflow_api", {"hello.sh": BASH_ECHO, "fail.sh": BASH_FAIL}
    )


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    return new_user(server)


BASH_FAIL = '#!/bin/bash\necho "failing on purpose" >&2\nexit 3\n'


def schedule_script(
    server: ThreadServer, job_id: str, script: str = "hello.sh", **extra: Any
) -> Any:
    path = str(server.app.ctx.settings.script_roots[0] / script)
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


# -- chains ------------------------------------------------------------------------------


def run(server: ThreadServer, job_id: str) -> str:
    response = call(server, "POST", f"/api/scheduler/jobs/{job_id}/run")
    assert response.status_code == 200, response.text
    execution_id: str = response.json()["execution_id"]
    return execution_id


def execution(server: ThreadServer, execution_id: str) -> dict[str, Any]:
    data: dict[str, Any] = call(server, "GET", f"/api/scheduler/executions/{execution_id}").json()[
        "data"
    ]
    return data


def chained_from(server: ThreadServer, job_id: str, source: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        runs = call(server, "GET", "/api/scheduler/executions", job_id=job_id).json()["data"]
        for entry in runs:
            if entry["triggered_by"] == source and entry["status"] == "completed":
                found: dict[str, Any] = entry
                return found
        return None

    return wait_for(find, 15, f"a run of {job_id} triggered by {source}")


def test_on_success_and_on_failure_start_their_jobs(server: ThreadServer, user_id: str) -> None:
    after_ok = created(server, user_id, cron="@yearly", name="after ok")["_id"]
    after_fail = created(server, user_id, cron="@yearly", name="after fail")["_id"]
    ok = created(server, user_id, cron="@yearly", on_success=[after_ok], on_failure=[after_fail])
    assert ok["on_success"] == [after_ok] and ok["on_failure"] == [after_fail]
    source = run(server, ok["_id"])
    chained = chained_from(server, after_ok, source)
    assert chained["reason"] == "chain"
    entry = wait_for(lambda: execution(server, source)["chained"] or None, 10, "the chain record")
    assert entry == [{"job_id": after_ok, "execution_id": chained["_id"]}]
    # a failing scripts-surface job takes its chain on create
    response = schedule_script(server, "failing_chain", "fail.sh", on_failure=[after_fail])
    assert response.status_code == 200, response.text
    failed = run(server, "failing_chain")
    assert chained_from(server, after_fail, failed)["job_id"] == after_fail
    assert execution(server, failed)["status"] == "failed"


def test_a_loop_is_refused_in_each_surface_envelope(server: ThreadServer, user_id: str) -> None:
    first = created(server, user_id, cron="@yearly", name="first")["_id"]
    second = created(server, user_id, cron="@yearly", name="second", on_success=[first])["_id"]
    message = refused(update(server, first, on_failure=[second]), 422)
    assert message == f"on_failure would loop: {first} -> {second} -> {first}"
    assert job(server, first)["on_failure"] == []
    assert refused(update(server, first, on_success=["0" * 24]), 422) == (
        f"on_success names no job: {'0' * 24}"
    )
    assert refused(update(server, first, on_success="x"), 422) == (
        "on_success must be a list of strings"
    )
    scripts = refused(schedule_script(server, "looping", on_success=["looping"]), 400, key="error")
    assert scripts == "on_success would loop: looping -> looping"


def test_a_removed_target_is_reported_on_the_triggering_execution(
    server: ThreadServer, user_id: str
) -> None:
    target = created(server, user_id, cron="@yearly", name="doomed")["_id"]
    source_job = created(server, user_id, cron="@yearly", on_success=[target])["_id"]
    assert call(server, "DELETE", f"/api/scheduler/jobs/{target}").status_code == 200
    source = run(server, source_job)
    entry = wait_for(lambda: execution(server, source)["chained"] or None, 10, "the report")
    assert entry == [{"job_id": target, "error": f"job {target} was removed; nothing was started"}]
    assert execution(server, source)["status"] == "completed"


# -- backfill ----------------------------------------------------------------------------


def backfill(server: ThreadServer, job_id: str, **body: Any) -> Any:
    return call(server, "POST", f"/api/scheduler/jobs/{job_id}/backfill", body)


def test_backfill_runs_the_occurrences_in_the_range_oldest_first(
    server: ThreadServer, user_id: str
) -> None:
    job_id = created(server, user_id, cron="*/15 * * * *", timezone="Europe/Paris")["_id"]
    response = backfill(server, job_id, start="2020-03-01T00:00:00", end="2020-03-01T01:00:00")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success" and body["total"] == 5
    assert body["message"] == f"Backfill of 5 occurrence(s) of job {job_id} started"
    # naive times are on the job's clock: midnight in Paris is 23:00 UTC the day before
    assert [e["scheduled_for"] for e in body["data"]] == [
        f"2020-02-29T23:{m:02d}:00+00:00" for m in (0, 15, 30, 45)
    ] + ["2020-03-01T00:00:00+00:00"]
    assert all(e["reason"] == "backfill" for e in body["data"])

    def finished() -> list[dict[str, Any]] | None:
        runs = call(server, "GET", "/api/scheduler/executions", job_id=job_id).json()["data"]
        done = [r for r in runs if r["status"] == "completed"]
        return done if len(done) == 5 else None

    runs = sorted(wait_for(finished, 15, "the backfill to finish"), key=lambda r: r["started_at"])
    assert [r["scheduled_for"] for r in runs] == [e["scheduled_for"] for e in body["data"]]
    assert all(r["overlap_decision"].startswith("queued: a backfill runs") for r in runs)


def test_backfill_refusals_in_the_scheduler_envelope(server: ThreadServer, user_id: str) -> None:
    job_id = created(server, user_id, cron="* * * * * *")["_id"]  # every second
    assert call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/pause").status_code == 200
    too_many = backfill(server, job_id, start="2020-01-01T00:00:00Z", end="2020-01-01T02:00:00Z")
    assert refused(too_many, 422) == (
        "the range holds 7,201 occurrences of the job's schedule; a backfill runs at most "
        "1,000 (split the range)"
    )
    assert refused(backfill(server, job_id, start="2020-01-01T00:00:00Z"), 400) == (
        "Missing required field: end"
    )
    assert refused(
        backfill(server, job_id, start="yesterday", end="2020-01-01T00:00:00Z"), 422
    ).startswith("start is not an ISO 8601 datetime")
    assert (
        refused(
            backfill(server, job_id, start="2020-01-02T00:00:00Z", end="2020-01-01T00:00:00Z"), 422
        )
        == "end must be later than start"
    )
    assert refused(
        backfill(server, job_id, start="2020-01-01T00:00:00Z", end=future(days=1).isoformat()),
        422,
    ).startswith("end must not be in the future")
    assert refused(
        backfill(server, "0" * 24, start="2020-01-01T00:00:00Z", end="2020-01-01T00:01:00Z"), 404
    ).startswith("Job")
    runs = call(server, "GET", "/api/scheduler/executions", job_id=job_id).json()["data"]
    assert [r for r in runs if r["reason"] == "backfill"] == []  # nothing was recorded
    spec = call(server, "GET", "/openapi.json").json()
    operation = spec["paths"]["/api/scheduler/jobs/{job_id}/backfill"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["start", "end"]
