"""Remembered job-list answers (api/list_answers.py) are never stale: after a change
through any path (either surface's API, the engine's fires and manual runs, another node
writing the same SQLite file) every list answers exactly the bytes a fresh read of the
file gives, for every owner scope; and the bound on remembered bytes holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from api import job_lists
from api.list_answers import ListAnswers
from stores.sqlite import SqliteStore
from tests.api_support import (
    BASH_ECHO,
    ThreadServer,
    finished_execution,
    make_settings,
    opened_sqlite,
    running_server,
    write_script,
)

ECHO_JOB = {
    "job_class_string": "jobs.echo.EchoJob",
    "name": "Echo",
    "minute": "0",
    "hour": "9",
    "pub_args": ["x"],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadServer]:
    with running_server(make_settings(tmp_path)) as live:
        yield live


@pytest.fixture
def other_node(tmp_path: Path) -> Iterator[SqliteStore]:
    """Another store on the server's file: a second node, and the fresh reads."""
    with opened_sqlite(tmp_path / "cronwell.db") as store:
        yield store


def call(server: ThreadServer, method: str, path: str, body: Any = None) -> requests.Response:
    response = requests.request(method, server.url + path, json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response


def check_lists(server: ThreadServer, fresh: SqliteStore, owners: list[str]) -> dict[str, Any]:
    """Each list answers what a fresh read of the file renders, asked twice (the second
    from what the first left remembered); the admin's scheduler list, parsed."""
    answers: dict[str, Any] = {}
    for _ in range(2):
        expected = {
            "/api/jobs": job_lists.script_jobs(fresh, None),
            "/api/scheduler/jobs": job_lists.scheduler_jobs(fresh, None),
            **{
                f"/api/scheduler/users/{owner}/jobs": job_lists.scheduler_jobs(fresh, owner)
                for owner in owners
            },
        }
        for path, text in expected.items():
            got = call(server, "GET", path)
            assert got.content == text.encode(), path
            answers[path] = got.json()
    return answers["/api/scheduler/jobs"]


def listed(answer: dict[str, Any], job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(job for job in answer["data"] if job["_id"] == job_id)
    return found


def test_no_list_is_stale_after_any_change(server: ThreadServer, other_node: SqliteStore) -> None:
    ada = call(server, "POST", "/api/users/", {"name": "Ada", "email": "ada@example.com"})
    bob = call(server, "POST", "/api/users/", {"name": "Bob", "email": "bob@example.com"})
    owners = [ada.json()["user_id"], bob.json()["user_id"]]
    check_lists(server, other_node, owners)  # empty, and remembered as empty

    jobs = [
        call(server, "POST", "/api/scheduler/jobs", {"user_id": owner, **ECHO_JOB}).json()["job_id"]
        for owner in owners
    ]
    answer = check_lists(server, other_node, owners)
    assert answer["total"] == 2

    call(server, "PATCH", f"/api/scheduler/jobs/{jobs[0]}/pause")
    assert listed(check_lists(server, other_node, owners), jobs[0])["is_paused"] is True

    run = call(server, "POST", f"/api/scheduler/jobs/{jobs[1]}/run").json()["execution_id"]
    assert finished_execution(server.url, jobs[1])["_id"] == run
    ran = listed(check_lists(server, other_node, owners), jobs[1])
    assert ran["total_executions"] == 1 and ran["last_run_time"] is not None

    script = write_script(server.app.ctx.settings.script_roots[0], "echo.sh", BASH_ECHO)
    due = (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat()
    body = {"job_id": "soon", "job_type": "bash", "script_path": str(script), "run_date": due}
    call(server, "POST", "/api/schedule-job", body)
    assert listed(check_lists(server, other_node, owners), "soon")["next_run_time"] is not None
    finished_execution(server.url, "soon")  # fired by the engine's timing loop
    fired = listed(check_lists(server, other_node, owners), "soon")
    assert fired["next_run_time"] is None and fired["total_executions"] == 1

    paused = other_node.get_job(jobs[1])  # another node's write to the same file
    paused.paused = True
    other_node.update_job(paused)
    assert listed(check_lists(server, other_node, owners), jobs[1])["is_paused"] is True

    call(server, "DELETE", "/api/remove-job/soon")
    call(server, "DELETE", f"/api/scheduler/jobs/{jobs[0]}")
    answer = check_lists(server, other_node, owners)
    assert [job["_id"] for job in answer["data"]] == [jobs[1]]


def test_remembered_answers_are_bounded_in_bytes() -> None:
    answers = ListAnswers(limit=10)
    answers.put(("scripts", None), 1, b"12345")
    answers.put(("scheduler", None), 1, b"1234")
    assert answers.get(("scripts", None), 1) == b"12345"
    assert answers.get(("scripts", None), 2) is None  # another revision: not this answer
    answers.put(("scripts", "u1"), 1, b"123")  # 12 bytes: the oldest goes
    assert answers.get(("scripts", None), 1) is None
    assert answers.get(("scheduler", None), 1) == b"1234"
    assert answers.get(("scripts", "u1"), 1) == b"123"
    answers.put(("scheduler", None), 2, b"12345678901")  # larger than the bound: not kept
    assert answers.get(("scheduler", None), 2) is None
    assert answers.get(("scheduler", None), 1) is None  # and the old one is gone too
    assert answers.get(("scripts", "u1"), 1) == b"123"
