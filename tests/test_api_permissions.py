"""Who may do what, on a real server on loopback: every endpoint x {no key, revoked key,
user key on their own record, user key on another user's record, admin key}.

The README's permission table is this table. Each cell builds its own records (through
an admin key) so a delete in one cell never breaks another; listing endpoints are also
checked for what they contain.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from api.ui.paths import is_page_path
from tests.api_support import ThreadServer, make_settings, running_server, wait_for, write_script

CASES = ("no_key", "revoked_key", "user_own", "user_other", "admin")
TERMINAL = {"completed", "failed", "timeout", "cancelled", "missed", "skipped", "abandoned"}
_numbers = itertools.count(1)


class World:
    """Three users (an admin A, users U1 and U2), their keys, and record factories."""

    def __init__(self, server: ThreadServer, script: Path) -> None:
        self.server = server
        self.url = server.url
        self.script = script
        # open mode: the first admin is made without a key, then the first key closes it
        self.admin_id = self._post("/api/users/", self._user_body("admin"), None)["user_id"]
        self.admin_key = self.call("POST", f"/api/users/{self.admin_id}/keys", {}, None)
        self.admin_key = self.admin_key.json()["api_key"]
        self.u1 = self.user()
        self.u2 = self.user()
        self.keys = {self.u1: self.key(self.u1), self.u2: self.key(self.u2)}
        revoked = self.call("POST", f"/api/users/{self.u1}/keys", {}, self.admin_key).json()
        gone = self.call(
            "DELETE", f"/api/users/{self.u1}/keys/{revoked['key_id']}", None, self.admin_key
        )
        assert gone.status_code == 200, gone.text
        self.revoked_key = revoked["api_key"]

    # -- plumbing ------------------------------------------------------------------------
    def call(
        self, method: str, path: str, body: Any, key: str | None, bearer: bool = False
    ) -> requests.Response:
        headers = {}
        if key is not None:
            headers = {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}
        return requests.request(method, self.url + path, json=body, headers=headers, timeout=10)

    def _post(self, path: str, body: Any, key: str | None) -> dict[str, Any]:
        response = self.call("POST", path, body, key)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    @staticmethod
    def _user_body(role: str = "user") -> dict[str, Any]:
        n = next(_numbers)
        return {"name": f"User {n}", "email": f"user{n}@example.com", "role": role}

    # -- record factories (as the admin) ---------------------------------------------------
    def user(self) -> str:
        user_id: str = self._post("/api/users/", self._user_body(), self.admin_key)["user_id"]
        return user_id

    def key(self, owner: str) -> str:
        key: str = self._post(f"/api/users/{owner}/keys", {}, self.admin_key)["api_key"]
        return key

    def key_id(self, owner: str) -> str:
        key_id: str = self._post(f"/api/users/{owner}/keys", {}, self.admin_key)["key_id"]
        return key_id

    def job(self, owner: str) -> str:
        body = {
            "user_id": owner,
            "job_class_string": "jobs.echo.EchoJob",
            "name": f"job {next(_numbers)}",
            "minute": "0",
            "hour": "3",
            "pub_args": ["hello"],
        }
        job_id: str = self._post("/api/scheduler/jobs", body, self.admin_key)["job_id"]
        return job_id

    def script_job(self, owner: str) -> str:
        """A scripts-surface job, made with the owner's own key (it belongs to them)."""
        job_id = f"script_{next(_numbers)}"
        self._post("/api/schedule-job", self.schedule_body(job_id), self.keys[owner])
        return job_id

    def schedule_body(self, job_id: str, replace: bool = False) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "job_type": "bash",
            "script_path": str(self.script),
            "run_date": "2099-12-31T23:59:59",
            "replace_existing": replace,
        }

    def server_record(self, owner: str) -> str:
        body = {"user_id": owner, "name": "srv", "hostname": "localhost", "port": 9}
        server_id: str = self._post("/api/servers/create", body, self.admin_key)["server_id"]
        return server_id

    def execution(self, owner: str) -> str:
        """A finished execution of the owner's job."""
        job_id = self.job(owner)
        run = self._post(f"/api/scheduler/jobs/{job_id}/run", None, self.admin_key)
        execution_id: str = run["execution_id"]

        def finished() -> bool:
            got = self.call(
                "GET", f"/api/scheduler/executions/{execution_id}", None, self.admin_key
            )
            return got.status_code == 200 and got.json()["data"]["status"] in TERMINAL

        wait_for(finished, 15, f"execution {execution_id} to finish")
        return execution_id


#: (method, path, body) for one request about `owner`'s records; `fresh` is True when
#: the request may destroy what it targets, so it targets records made for it alone
Build = Callable[[World, str], tuple[str, str, Any]]


@dataclass(frozen=True)
class Row:
    name: str
    build: Build
    #: statuses for user_own, user_other, admin (no key and a revoked key are always 401)
    own: int
    other: int
    admin: int
    open_path: bool = False  # the two health checks need no key

    def expected(self, case: str) -> int:
        if self.open_path:
            return 200
        return {
            "no_key": 401,
            "revoked_key": 401,
            "user_own": self.own,
            "user_other": self.other,
            "admin": self.admin,
        }[case]


def _fixed(method: str, path: str, body: Any = None) -> Build:
    return lambda w, owner: (method, path, body)


def _schedule(w: World, owner: str) -> tuple[str, str, Any]:
    if owner == w.u1:
        return "POST", "/api/schedule-job", w.schedule_body(f"new_{next(_numbers)}")
    # another user's job id, replace_existing: a taken id for a user key, replaced by an admin
    return "POST", "/api/schedule-job", w.schedule_body(w.script_job(owner), replace=True)


def _new_job_body(owner: str, job_class: str = "jobs.echo.EchoJob") -> dict[str, Any]:
    return {
        "user_id": owner,
        "job_class_string": job_class,
        "name": "new",
        "minute": "0",
        "hour": "4",
        "pub_kwargs": {"backup_type": "full"} if "backup" in job_class else {},
    }


def _fresh_user_unless_own(w: World, owner: str) -> str:
    """U1 for the own case; a throwaway user otherwise (an admin may delete it)."""
    return owner if owner == w.u1 else w.user()


ROWS: list[Row] = [
    # scripts surface
    Row("schedule-job", _schedule, 200, 409, 200),
    Row("list jobs (scripts)", _fixed("GET", "/api/jobs"), 200, 200, 200),
    Row(
        "get job (scripts)",
        lambda w, o: ("GET", f"/api/job/{w.script_job(o)}", None),
        200,
        404,
        200,
    ),
    Row(
        "remove-job",
        lambda w, o: ("DELETE", f"/api/remove-job/{w.script_job(o)}", None),
        200,
        404,
        200,
    ),
    Row(
        "pause-job", lambda w, o: ("PUT", f"/api/pause-job/{w.script_job(o)}", None), 200, 404, 200
    ),
    Row(
        "resume-job",
        lambda w, o: ("PUT", f"/api/resume-job/{w.script_job(o)}", None),
        200,
        404,
        200,
    ),
    Row("health (scripts)", _fixed("GET", "/api/health"), 200, 200, 200, open_path=True),
    # users
    Row("create user", lambda w, o: ("POST", "/api/users/", World._user_body()), 403, 403, 200),
    Row("list users", _fixed("GET", "/api/users/"), 200, 200, 200),
    Row("get user", lambda w, o: ("GET", f"/api/users/{o}", None), 200, 404, 200),
    Row("update user", lambda w, o: ("PUT", f"/api/users/{o}", {"name": "Renamed"}), 200, 404, 200),
    Row(
        "change role",
        lambda w, o: ("PUT", f"/api/users/{_fresh_user_unless_own(w, o)}", {"role": "admin"}),
        403,
        404,
        200,
    ),
    Row(
        "delete user",
        lambda w, o: ("DELETE", f"/api/users/{_fresh_user_unless_own(w, o)}", None),
        403,
        404,
        200,
    ),
    Row("create key", lambda w, o: ("POST", f"/api/users/{o}/keys", {"name": "k"}), 200, 404, 200),
    Row("list keys", lambda w, o: ("GET", f"/api/users/{o}/keys", None), 200, 404, 200),
    Row(
        "revoke key",
        lambda w, o: ("DELETE", f"/api/users/{o}/keys/{w.key_id(o)}", None),
        200,
        404,
        200,
    ),
    # servers
    Row(
        "create server",
        lambda w, o: (
            "POST",
            "/api/servers/create",
            {"user_id": o, "name": "s", "hostname": "localhost", "port": 22},
        ),
        200,
        403,
        200,
    ),
    Row("list servers", _fixed("GET", "/api/servers/"), 200, 200, 200),
    Row(
        "get server",
        lambda w, o: ("GET", f"/api/servers/{w.server_record(o)}", None),
        200,
        404,
        200,
    ),
    Row(
        "update server",
        lambda w, o: ("PUT", f"/api/servers/{w.server_record(o)}", {"port": 2222}),
        200,
        404,
        200,
    ),
    Row(
        "move server to another user",
        lambda w, o: (
            "PUT",
            f"/api/servers/{w.server_record(o)}",
            {"user_id": w.u2 if o == w.u1 else w.u1},
        ),
        403,
        404,
        200,
    ),
    Row(
        "delete server",
        lambda w, o: ("DELETE", f"/api/servers/{w.server_record(o)}", None),
        200,
        404,
        200,
    ),
    Row("servers of user", lambda w, o: ("GET", f"/api/servers/user/{o}", None), 200, 404, 200),
    # scheduler jobs
    Row(
        "create job", lambda w, o: ("POST", "/api/scheduler/jobs", _new_job_body(o)), 200, 403, 200
    ),
    Row(
        "create admin-only job class",
        lambda w, o: ("POST", "/api/scheduler/jobs", _new_job_body(o, "jobs.backup.DataBackupJob")),
        403,
        403,
        200,
    ),
    Row("list jobs (scheduler)", _fixed("GET", "/api/scheduler/jobs"), 200, 200, 200),
    Row("get job", lambda w, o: ("GET", f"/api/scheduler/jobs/{w.job(o)}", None), 200, 404, 200),
    Row(
        "update job",
        lambda w, o: ("PUT", f"/api/scheduler/jobs/{w.job(o)}", {"name": "renamed"}),
        200,
        404,
        200,
    ),
    Row(
        "move job to another user",
        lambda w, o: (
            "PUT",
            f"/api/scheduler/jobs/{w.job(o)}",
            {"user_id": w.u2 if o == w.u1 else w.u1},
        ),
        403,
        404,
        200,
    ),
    Row(
        "job to an admin-only class",
        lambda w, o: (
            "PUT",
            f"/api/scheduler/jobs/{w.job(o)}",
            {"job_class_string": "jobs.cleanup.DataCleanupJob", "pub_args": [], "pub_kwargs": {}},
        ),
        403,
        404,
        200,
    ),
    Row(
        "delete job",
        lambda w, o: ("DELETE", f"/api/scheduler/jobs/{w.job(o)}", None),
        200,
        404,
        200,
    ),
    Row(
        "pause job",
        lambda w, o: ("PATCH", f"/api/scheduler/jobs/{w.job(o)}/pause", None),
        200,
        404,
        200,
    ),
    Row(
        "resume job",
        lambda w, o: ("PATCH", f"/api/scheduler/jobs/{w.job(o)}/resume", None),
        200,
        404,
        200,
    ),
    Row(
        "run job", lambda w, o: ("POST", f"/api/scheduler/jobs/{w.job(o)}/run", None), 200, 404, 200
    ),
    Row(
        "jobs of user", lambda w, o: ("GET", f"/api/scheduler/users/{o}/jobs", None), 200, 404, 200
    ),
    # executions
    Row("list executions", _fixed("GET", "/api/scheduler/executions"), 200, 200, 200),
    Row(
        "get execution",
        lambda w, o: ("GET", f"/api/scheduler/executions/{w.execution(o)}", None),
        200,
        404,
        200,
    ),
    Row(
        # a finished execution: allowed to try (409: nothing to cancel), hidden when not yours
        "cancel execution",
        lambda w, o: ("POST", f"/api/scheduler/executions/{w.execution(o)}/cancel", None),
        409,
        404,
        409,
    ),
    # the rest of the scheduler surface
    Row("available jobs", _fixed("GET", "/api/scheduler/available-jobs"), 200, 200, 200),
    Row("stats", _fixed("GET", "/api/scheduler/stats"), 200, 200, 200),
    Row(
        "stats of a user",
        lambda w, o: ("GET", f"/api/scheduler/stats?user_id={o}", None),
        200,
        404,
        200,
    ),
    Row(
        "health (scheduler)", _fixed("GET", "/api/scheduler/health"), 200, 200, 200, open_path=True
    ),
    Row("audit trail", _fixed("GET", "/api/audit"), 403, 403, 200),
    Row("openapi", _fixed("GET", "/openapi.json"), 200, 200, 200, open_path=True),
    Row("docs", _fixed("GET", "/docs"), 200, 200, 200, open_path=True),
    Row("docs files", _fixed("GET", "/docs/swagger-ui.css"), 200, 200, 200, open_path=True),
    Row("nodes", _fixed("GET", "/api/scheduler/nodes"), 200, 200, 200),
    Row("metrics", _fixed("GET", "/metrics"), 403, 403, 200),
    Row(
        "backfill",
        lambda w, o: (
            "POST",
            f"/api/scheduler/jobs/{w.job(o)}/backfill",
            {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"},
        ),
        200,
        404,
        200,
    ),
    Row(
        "next runs",
        lambda w, o: ("GET", f"/api/scheduler/jobs/{w.job(o)}/next-runs", None),
        200,
        404,
        200,
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("permissions")
    settings = make_settings(tmp, auth_failure_limit=100_000)
    script = write_script(settings.script_roots[0], "hello.sh", "#!/bin/bash\necho hi\n")
    with running_server(settings) as live:
        yield World(live, script)


def _route_key(method: str, path: str) -> tuple[str, str]:
    path = path.split("?")[0].strip("/")
    path = re.sub(r"(?<=/)([0-9a-f]{24}|script_\d+)(?=/|$)", "<id>", path)
    path = re.sub(r"^docs/[^/]+$", "docs/<id>", path)  # the Swagger UI's files
    return method, path


#: the two Server-Sent Event streams never end by themselves: their cells are checked by
#: test_the_streams_answer_each_key_as_its_reads_do below, with the stream left open
STREAMS = {
    ("GET", "api/scheduler/events"),
    ("GET", "api/scheduler/executions/<id>/stream"),
}


def test_the_streams_answer_each_key_as_its_reads_do(world: World) -> None:
    run = world.execution(world.u1)
    cells = [
        ("/api/scheduler/events", None, 401),
        ("/api/scheduler/events", world.keys[world.u1], 200),
        (f"/api/scheduler/events?user_id={world.u2}", world.keys[world.u1], 404),
        (f"/api/scheduler/events?user_id={world.u2}", world.admin_key, 200),
        (f"/api/scheduler/executions/{run}/stream", None, 401),
        (f"/api/scheduler/executions/{run}/stream", world.keys[world.u1], 200),
        (f"/api/scheduler/executions/{run}/stream", world.keys[world.u2], 404),
        (f"/api/scheduler/executions/{run}/stream", world.admin_key, 200),
    ]
    for path, key, status in cells:
        headers = {"X-API-Key": key} if key else {}
        with requests.get(world.url + path, headers=headers, stream=True, timeout=10) as answer:
            assert answer.status_code == status, (path, key, answer.status_code)


def test_the_table_covers_every_route(world: World) -> None:
    routes = {
        (method, re.sub(r"<[^>]+>", "<id>", route.path))
        for route in world.server.app.router.routes
        for method in route.methods
        if not is_page_path("/" + route.path)  # the dashboard's: tests/test_ui_permissions.py
    }
    covered = {_route_key(*row.build(world, world.u1)[:2]) for row in ROWS}
    assert routes == covered | STREAMS


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_permission_cell(world: World, row: Row, case: str) -> None:
    owner = world.u1 if case == "user_own" else world.u2
    method, path, body = row.build(world, owner)
    key = {
        "no_key": None,
        "revoked_key": world.revoked_key,
        "user_own": world.keys[world.u1],
        "user_other": world.keys[world.u1],
        "admin": world.admin_key,
    }[case]
    # both ways of sending a key are used: Bearer for the user cells, X-API-Key otherwise
    response = world.call(method, path, body, key, bearer=case.startswith("user"))
    assert response.status_code == row.expected(case), (method, path, case, response.text)
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
        envelope = (
            "detail"
            if path.startswith(("/api/users", "/api/servers", "/api/scheduler", "/api/audit"))
            else "error"
        )
        assert list(response.json()) == [envelope]
    if response.status_code == 404 and case == "user_other":
        # exactly what a missing record answers: the message names only the id asked for
        assert "not found" in response.text.lower()


def _ids(response: requests.Response, field: str = "_id") -> set[str]:
    assert response.status_code == 200, response.text
    return {entry[field] for entry in response.json()["data"]}


def test_lists_show_a_user_only_their_own(world: World) -> None:
    own_job, other_job = world.job(world.u1), world.job(world.u2)
    own_server, other_server = world.server_record(world.u1), world.server_record(world.u2)
    own_run, other_run = world.execution(world.u1), world.execution(world.u2)
    own_script, other_script = world.script_job(world.u1), world.script_job(world.u2)
    user_key, admin = world.keys[world.u1], world.admin_key

    users = _ids(world.call("GET", "/api/users/", None, user_key))
    assert users == {world.u1}
    assert {world.u1, world.u2, world.admin_id} <= _ids(
        world.call("GET", "/api/users/", None, admin)
    )

    jobs = _ids(world.call("GET", "/api/scheduler/jobs", None, user_key))
    assert own_job in jobs and own_script in jobs and other_job not in jobs
    assert other_script not in jobs
    assert {own_job, other_job} <= _ids(world.call("GET", "/api/scheduler/jobs", None, admin))
    scripts = world.call("GET", "/api/jobs", None, user_key).json()["jobs"]
    assert own_script in {j["job_id"] for j in scripts}
    assert other_script not in {j["job_id"] for j in scripts}

    servers = _ids(world.call("GET", "/api/servers/", None, user_key))
    assert own_server in servers and other_server not in servers
    all_servers = _ids(world.call("GET", "/api/servers/", None, admin))
    assert {own_server, other_server} <= all_servers

    runs = world.call("GET", "/api/scheduler/executions?limit=1000", None, user_key)
    assert own_run in _ids(runs) and other_run not in _ids(runs)
    assert all(e["user_id"] == world.u1 for e in runs.json()["data"])
    filtered = world.call(
        "GET", f"/api/scheduler/executions?user_id={world.u2}", None, user_key
    ).json()
    assert filtered["data"] == [] and filtered["total"] == 0
    by_job = world.call("GET", f"/api/scheduler/executions?job_id={other_job}", None, user_key)
    assert by_job.json()["data"] == []

    mine = world.call("GET", "/api/scheduler/stats", None, user_key).json()["stats"]
    everyone = world.call("GET", "/api/scheduler/stats", None, admin).json()["stats"]
    assert mine["total_jobs"] < everyone["total_jobs"]
    own_jobs = world.call("GET", f"/api/scheduler/users/{world.u1}/jobs", None, admin).json()
    assert mine["total_jobs"] == own_jobs["total"]

    keys = world.call("GET", f"/api/users/{world.u1}/keys", None, user_key).json()["data"]
    assert keys and all(
        set(k) == {"key_id", "name", "prefix", "created_at", "last_used_at"} for k in keys
    )
    assert all(len(k["prefix"]) == 8 for k in keys)


def test_a_scripts_job_belongs_to_the_keys_user(world: World) -> None:
    job_id = world.script_job(world.u2)
    job = world.call("GET", f"/api/scheduler/jobs/{job_id}", None, world.admin_key).json()
    assert job["data"]["user_id"] == world.u2


def test_a_revoked_key_is_refused_on_the_next_request(world: World) -> None:
    answer = world._post(f"/api/users/{world.u1}/keys", {"name": "short-lived"}, world.admin_key)
    assert set(answer) == {"status", "message", "key_id", "api_key"}
    key = answer["api_key"]
    assert world.call("GET", "/api/scheduler/jobs", None, key).status_code == 200
    listed = world.call("GET", f"/api/users/{world.u1}/keys", None, key).json()["data"]
    used = [k for k in listed if k["key_id"] == answer["key_id"]]
    assert used and used[0]["last_used_at"] is not None
    assert used[0]["prefix"] == key[:8] and key not in str(listed)
    revoked = world.call("DELETE", f"/api/users/{world.u1}/keys/{answer['key_id']}", None, key)
    assert revoked.status_code == 200
    refused = world.call("GET", "/api/scheduler/jobs", None, key)
    assert refused.status_code == 401 and refused.json() == {"detail": "Invalid or revoked API key"}
    again = world.call(
        "DELETE", f"/api/users/{world.u1}/keys/{answer['key_id']}", None, world.admin_key
    )
    assert again.status_code == 404


def test_a_role_must_be_admin_or_user(world: World) -> None:
    body = {**World._user_body(), "role": "superuser"}
    refused = world.call("POST", "/api/users/", body, world.admin_key)
    assert refused.status_code == 422 and "role" in refused.json()["detail"]
    user_id = world.user()
    changed = world.call("PUT", f"/api/users/{user_id}", {"role": "root"}, world.admin_key)
    assert changed.status_code == 422
    same = world.call("PUT", f"/api/users/{world.u1}", {"role": "user"}, world.keys[world.u1])
    assert same.status_code == 200  # sending one's own role unchanged is no change


def test_a_user_promoted_by_an_admin_acts_as_admin_on_the_next_request(world: World) -> None:
    user_id = world.user()
    key = world.key(user_id)
    assert world.call("GET", "/api/audit", None, key).status_code == 403
    promoted = world.call("PUT", f"/api/users/{user_id}", {"role": "admin"}, world.admin_key)
    assert promoted.status_code == 200
    assert world.call("GET", "/api/audit", None, key).status_code == 200


def test_deleting_a_user_revokes_their_keys(world: World) -> None:
    user_id = world.user()
    key = world.key(user_id)
    assert world.call("GET", "/api/users/", None, key).status_code == 200
    assert world.call("DELETE", f"/api/users/{user_id}", None, world.admin_key).status_code == 200
    assert world.call("GET", "/api/users/", None, key).status_code == 401


def test_an_admin_replacing_a_users_script_job_leaves_it_theirs(world: World) -> None:
    job_id = world.script_job(world.u2)
    body = world.schedule_body(job_id, replace=True)
    assert world.call("POST", "/api/schedule-job", body, world.admin_key).status_code == 200
    job = world.call("GET", f"/api/scheduler/jobs/{job_id}", None, world.admin_key).json()
    assert job["data"]["user_id"] == world.u2
    fresh = world.schedule_body(f"admin_{next(_numbers)}")
    assert world.call("POST", "/api/schedule-job", fresh, world.admin_key).status_code == 200
    mine = world.call("GET", f"/api/scheduler/jobs/{fresh['job_id']}", None, world.admin_key)
    assert mine.json()["data"]["user_id"] == world.admin_id
