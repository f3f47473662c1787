"""`GET /api/scheduler/jobs/{id}/next-runs?count=N`: the next fire times as the engine
will fire them, honouring pause, end_date and the job's timezone (DST included); errors
in the scheduler envelope."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api_support import ThreadServer, finished_execution, new_user, serve_module
from tests.test_api_schedules import call, created, future, refused, when


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    yield from serve_module(tmp_path_factory, "next_runs_api")


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    return new_user(server)


def next_runs(server: ThreadServer, job_id: str, **params: Any) -> dict[str, Any]:
    response = call(server, "GET", f"/api/scheduler/jobs/{job_id}/next-runs", **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_default_count_and_the_answer_shape(server: ThreadServer, user_id: str) -> None:
    data = created(server, user_id, cron="0 12 * * *")
    body = next_runs(server, data["_id"])
    assert list(body) == [
        "status",
        "message",
        "job_id",
        "timezone",
        "is_enabled",
        "is_paused",
        "count",
        "total",
        "data",
    ]
    assert body["status"] == "success" and body["count"] == 5 and body["total"] == 5
    assert body["message"] == f"Next 5 runs of job {data['_id']}"
    fires = [when(run["fire_time"]) for run in body["data"]]
    assert fires[0] == when(data["next_run_time"])
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(fires))
    assert all(f.utcoffset() == timedelta(0) and f.hour == 12 for f in fires)
    assert [run["occurrence"] for run in body["data"]] == [run["fire_time"] for run in body["data"]]
    assert len(next_runs(server, data["_id"], count=100)["data"]) == 100
    assert len(next_runs(server, data["_id"], count=1)["data"]) == 1


def test_local_times_across_both_berlin_changes(server: ThreadServer, user_id: str) -> None:
    data = created(
        server,
        user_id,
        cron="30 2 * * *",
        timezone="Europe/Berlin",
        start_date="2030-03-30T00:00:00",  # Berlin springs forward on 2030-03-31
    )
    spring = next_runs(server, data["_id"], count=3)["data"]
    assert [run["local_time"] for run in spring] == [
        "2030-03-30T02:30:00+01:00",
        "2030-03-31T03:00:00+02:00",  # 02:30 does not exist: once, when the clock jumps
        "2030-04-01T02:30:00+02:00",
    ]
    assert [run["fire_time"] for run in spring] == [
        "2030-03-30T01:30:00+00:00",
        "2030-03-31T01:00:00+00:00",
        "2030-04-01T00:30:00+00:00",
    ]
    hourly = created(
        server,
        user_id,
        cron="0 * * * *",
        timezone="Europe/Berlin",
        start_date="2030-10-27T01:00:00",  # and falls back on 2030-10-27
    )
    autumn = next_runs(server, hourly["_id"], count=4)["data"]
    assert [run["local_time"] for run in autumn] == [
        "2030-10-27T01:00:00+02:00",
        "2030-10-27T02:00:00+02:00",
        "2030-10-27T02:00:00+01:00",  # the repeated hour, fired again
        "2030-10-27T03:00:00+01:00",
    ]


def test_end_date_cuts_the_list_short(server: ThreadServer, user_id: str) -> None:
    start = future(days=1).replace(minute=0, second=0, microsecond=0)
    data = created(
        server,
        user_id,
        interval_seconds=600,
        start_date=start.isoformat(),
        end_date=(start + timedelta(minutes=25)).isoformat(),
    )
    body = next_runs(server, data["_id"], count=10)
    assert [when(run["fire_time"]) for run in body["data"]] == [
        start,
        start + timedelta(minutes=10),
        start + timedelta(minutes=20),
    ]
    assert body["count"] == 10 and body["total"] == 3


def test_a_one_off_has_one_run_and_none_once_it_ran(server: ThreadServer, user_id: str) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    data = created(server, user_id, run_date=soon.isoformat())
    body = next_runs(server, data["_id"], count=5)
    assert [when(run["fire_time"]) for run in body["data"]] == [soon]
    finished_execution(server.url, data["_id"])
    done = next_runs(server, data["_id"])
    assert done["total"] == 0 and done["message"] == (
        f"Job {data['_id']} has no more runs (its schedule is over)"
    )


def test_a_paused_job_has_none_and_says_so(server: ThreadServer, user_id: str) -> None:
    job_id = created(server, user_id, cron="@hourly")["_id"]
    call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/pause")
    body = next_runs(server, job_id, count=3)
    assert (body["total"], body["data"], body["is_paused"]) == (0, [], True)
    assert "paused" in body["message"]
    call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/resume")
    assert next_runs(server, job_id, count=3)["total"] == 3


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("count=0", "count must be at least 1"),
        ("count=101", "count must be at most 100"),
        ("count=ten", "count must be a whole number, not 'ten'"),
        ("count=1&count=2", "Query parameter count given more than once"),
        ("limit=3", "Unknown query parameter: limit (accepted: count)"),
    ],
)
def test_bad_queries_are_400_in_the_scheduler_envelope(
    server: ThreadServer, user_id: str, query: str, message: str
) -> None:
    job_id = created(server, user_id, cron="@daily")["_id"]
    response = call(server, "GET", f"/api/scheduler/jobs/{job_id}/next-runs?{query}")
    assert refused(response, 400) == message


def test_unknown_and_malformed_jobs(server: ThreadServer) -> None:
    missing = call(server, "GET", "/api/scheduler/jobs/0123456789abcdef01234567/next-runs")
    assert refused(missing, 404) == "Job not found: 0123456789abcdef01234567"
    bad = call(server, "GET", "/api/scheduler/jobs/bad%20id!/next-runs")
    assert refused(bad, 400).startswith("Invalid job id")
