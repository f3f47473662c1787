"""Every input bounded, on a real server on loopback: integers, dates, seconds, sizes,
text a process cannot take; path parameters percent-decoded; 405s carry `Allow`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from api.limits import MAX_DEPTH, MAX_OFFSET, MAX_SECONDS
from tests.api_support import BASH_ECHO, ThreadServer, make_settings, running_server, write_script

SCHEDULER = ("/api/users", "/api/servers", "/api/scheduler", "/api/audit")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("limits_api")
    with running_server(make_settings(tmp)) as live:
        write_script(live.app.ctx.settings.script_roots[0], "echo.sh", BASH_ECHO)
        yield live


@pytest.fixture(scope="module")
def script(server: ThreadServer) -> str:
    return str(server.app.ctx.settings.script_roots[0] / "echo.sh")


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    answer = requests.post(
        f"{server.url}/api/users/", json={"name": "Lim", "email": "lim@example.com"}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    found: str = answer.json()["user_id"]
    return found


def send(server: ThreadServer, method: str, path: str, body: Any = None) -> requests.Response:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
    return requests.request(
        method,
        server.url + path,
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def refused(response: requests.Response, status: int, field: str) -> str:
    """A 4xx in the path's own envelope whose message names the field; no traceback."""
    path = response.request.path_url
    key = "detail" if path.startswith(SCHEDULER) else "error"
    assert response.status_code == status, (path, response.text)
    body = response.json()
    assert list(body) == [key], body
    assert "Traceback" not in response.text
    message: str = body[key]
    assert field in message, message
    return message


def job_body(user_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "job_class_string": "jobs.echo.EchoJob",
        "name": "bounded",
        "minute": "0",
        "hour": "9",
        **extra,
    }


def schedule_body(script: str, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": "limits_job",
        "job_type": "bash",
        "script_path": script,
        "run_date": "2099-01-01T00:00:00",
        "replace_existing": True,
        **extra,
    }


# -- integers --------------------------------------------------------------------------
#: the paged lists (the audit trail's offset once reached SQLite as a 64-bit overflow)
PAGED = ("/api/scheduler/executions", "/api/audit")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("offset=9223372036854775808", "offset"),
        (f"offset={MAX_OFFSET + 1}", "offset"),
        ("offset=-1", "offset"),
        ("limit=99999999999999999999999", "limit"),
        ("limit=" + "9" * 5000, "limit"),
    ],
)
@pytest.mark.parametrize("path", PAGED)
def test_query_integers_out_of_range_are_400_naming_the_parameter(
    server: ThreadServer, path: str, query: str, field: str
) -> None:
    refused(send(server, "GET", f"{path}?{query}"), 400, field)


@pytest.mark.parametrize("path", PAGED)
def test_the_largest_offset_still_answers_a_page(server: ThreadServer, path: str) -> None:
    answer = send(server, "GET", f"{path}?offset={MAX_OFFSET}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == [] and answer.json()["offset"] == MAX_OFFSET


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_instances": 2**64}, "max_instances"),
        ({"retries": -(2**70)}, "retries"),
        ({"pub_args": [2**63]}, "pub_args[0]"),
        ({"pub_kwargs": {"deep": {"n": -(2**63) - 1}}}, "pub_kwargs.deep.n"),
    ],
)
def test_body_integers_beyond_64_bits_are_422(
    server: ThreadServer, user_id: str, extra: dict[str, Any], field: str
) -> None:
    refused(send(server, "POST", "/api/scheduler/jobs", job_body(user_id, **extra)), 422, field)


def test_a_server_port_beyond_64_bits_is_422(server: ThreadServer, user_id: str) -> None:
    body = {"user_id": user_id, "name": "s", "hostname": "h.example", "port": 2**80}
    refused(send(server, "POST", "/api/servers/create", body), 422, "port")


def test_a_number_json_reads_as_infinity_is_422(server: ThreadServer, user_id: str) -> None:
    raw = json.dumps(job_body(user_id)).replace('"hour": "9"', '"hour": "9", "pub_args": [1e999]')
    refused(send(server, "POST", "/api/scheduler/jobs", raw.encode()), 422, "pub_args[0]")
    raw = json.dumps(job_body(user_id)).replace('"hour": "9"', '"hour": "9", "timeout": 1e999')
    refused(send(server, "POST", "/api/scheduler/jobs", raw.encode()), 422, "timeout")


# -- seconds ---------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["timeout", "misfire_grace_time", "retry_delay"])
def test_seconds_beyond_a_year_are_422(server: ThreadServer, user_id: str, field: str) -> None:
    body = job_body(user_id, **{field: 1e10})
    message = refused(send(server, "POST", "/api/scheduler/jobs", body), 422, field)
    assert str(MAX_SECONDS) in message


def test_a_year_of_seconds_is_accepted_and_shown(server: ThreadServer, user_id: str) -> None:
    body = job_body(user_id, timeout=MAX_SECONDS, misfire_grace_time=MAX_SECONDS)
    answer = send(server, "POST", "/api/scheduler/jobs", body)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["timeout"], data["misfire_grace_time"]) == (MAX_SECONDS, MAX_SECONDS)
    changed = send(server, "PUT", f"/api/scheduler/jobs/{data['_id']}", {"timeout": 1e12})
    refused(changed, 422, "timeout")


# -- dates -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "run_date",
    [
        "9999-12-31T23:59:59-12:00",  # past year 9999 once in UTC
        "9999-12-31T23:59:59",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    ],
)
def test_run_dates_off_the_calendar_are_400_naming_run_date(
    server: ThreadServer, script: str, run_date: str
) -> None:
    body = schedule_body(script, run_date=run_date)
    refused(send(server, "POST", "/api/schedule-job", body), 400, "run_date")


def test_a_far_but_representable_run_date_is_accepted(server: ThreadServer, script: str) -> None:
    body = schedule_body(script, run_date="9999-01-01T00:00:00+14:00")
    answer = send(server, "POST", "/api/schedule-job", body)
    assert answer.status_code == 200, answer.text
    assert send(server, "GET", "/api/job/limits_job").status_code == 200
    assert send(server, "GET", "/api/scheduler/jobs/limits_job").status_code == 200


# -- text a process cannot take, and sizes ---------------------------------------------
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"args": ["ok", "a\x00b"]}, "args[1]"),
        ({"job_id": "x\x00"}, "job_id"),
        ({"script_path": "/tmp/a\x00.sh"}, "script_path"),
        ({"args": ["x" * 40_000]}, "args[0]"),
    ],
)
def test_scripts_surface_refuses_unfit_text(
    server: ThreadServer, script: str, extra: dict[str, Any], field: str
) -> None:
    refused(send(server, "POST", "/api/schedule-job", schedule_body(script, **extra)), 400, field)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"name": "nul\x00name"}, "name"),
        ({"pub_args": ["fine", {"k": "v\x00"}]}, "pub_args[1].k"),
        ({"pub_kwargs": {"bad\x00key": 1}}, "pub_kwargs key"),
        ({"timezone": "Europe/Paris\x00"}, "timezone"),
        ({"minute": "0\x00"}, "minute"),
    ],
)
def test_scheduler_surface_refuses_unfit_text(
    server: ThreadServer, user_id: str, extra: dict[str, Any], field: str
) -> None:
    refused(send(server, "POST", "/api/scheduler/jobs", job_body(user_id, **extra)), 422, field)


def test_an_unpaired_surrogate_is_refused(server: ThreadServer) -> None:
    raw = b'{"name": "half \\ud800 a pair", "email": "s@example.com"}'
    message = refused(send(server, "POST", "/api/users/", raw), 422, "name")
    assert "surrogate" in message


def test_json_nested_too_deep_for_a_job_is_422(server: ThreadServer, user_id: str) -> None:
    nested: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        nested = {"n": nested}
    body = job_body(user_id, pub_kwargs=nested)
    refused(send(server, "POST", "/api/scheduler/jobs", body), 422, "pub_kwargs")
    nested = "leaf"
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    answer = send(server, "POST", "/api/scheduler/jobs", job_body(user_id, pub_args=nested))
    assert answer.status_code == 200, answer.text


def test_too_many_kwargs_are_422(server: ThreadServer, user_id: str) -> None:
    body = job_body(user_id, pub_kwargs={f"k{i}": i for i in range(1001)})
    refused(send(server, "POST", "/api/scheduler/jobs", body), 422, "pub_kwargs")


# -- paths and methods -----------------------------------------------------------------
def test_path_parameters_are_percent_decoded(server: ThreadServer, script: str) -> None:
    body = schedule_body(script, job_id="a:b@c")
    assert send(server, "POST", "/api/schedule-job", body).status_code == 200
    got = send(server, "GET", "/api/job/a%3Ab%40c")
    assert got.status_code == 200 and got.json()["job"]["job_id"] == "a:b@c"
    on_scheduler = send(server, "GET", "/api/scheduler/jobs/a%3Ab%40c")
    assert on_scheduler.status_code == 200 and on_scheduler.json()["data"]["_id"] == "a:b@c"
    assert send(server, "PUT", "/api/pause-job/a%3Ab%40c").status_code == 200
    assert send(server, "GET", "/api/job/a:b@c").json()["job"]["next_run_time"] is None
    assert send(server, "DELETE", "/api/remove-job/a%3Ab%40c").status_code == 200
    gone = send(server, "GET", "/api/job/a%3Ab%40c")
    assert gone.status_code == 404 and gone.json() == {"error": "Job not found: a:b@c"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/api/users/0123456789abcdef01234567", "DELETE, GET, PUT"),
        ("PATCH", "/api/servers/0123456789abcdef01234567", "DELETE, GET, PUT"),
        ("POST", "/api/scheduler/jobs/some_job", "DELETE, GET, PUT"),
        ("DELETE", "/api/scheduler/jobs", "GET, POST"),
        ("GET", "/api/scheduler/jobs/x/run", "POST"),
    ],
)
def test_every_405_carries_allow(server: ThreadServer, method: str, path: str, allow: str) -> None:
    answer = send(server, method, path)
    message = refused(answer, 405, method)
    assert answer.headers["Allow"] == allow
    assert message.endswith(f"(allowed: {allow})")


def test_the_limits_hold_on_a_second_app_too(tmp_path: Path) -> None:
    # decode_path_parameters marks the routes of each app it builds, not a global
    with running_server(make_settings(tmp_path)) as live:
        answer = requests.get(f"{live.url}/api/job/a%3Ab", timeout=5)
        assert answer.json() == {"error": "Job not found: a:b"}


@pytest.mark.parametrize(
    "query",
    ["user_id=", "job_id=&status=completed", "limit=", "status="],
)
def test_a_blank_query_parameter_is_refused_not_ignored(server: ThreadServer, query: str) -> None:
    # `?user_id=$UNSET` must not widen the filter to every user's executions
    name = query.split("=")[0]
    message = refused(send(server, "GET", f"/api/scheduler/executions?{query}"), 400, name)
    assert message == f"Query parameter {name} is empty (leave it out to not filter by it)"
    refused(send(server, "GET", "/api/scheduler/stats?user_id="), 400, "user_id")
