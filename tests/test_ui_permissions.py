"""Who may load each dashboard page and who may post, on a real server on loopback:
every page route x {no session, a session whose key was revoked, a user's session on
their own record, a user's session on another user's record, an admin's session}.

The README's dashboard permission table is this table. A page answers what the API
answers the same key for the same record (404 for another user's, 403 for the audit
trail), and sends a browser without a live session to the sign-in form (302). A write a
page makes to the JSON API acts for the session and needs its CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from api.ui.paths import is_page_path
from tests.api_support import make_settings, running_server, write_script
from tests.test_api_permissions import World
from tests.ui_support import csrf_of, signed_in

CASES = ("no_session", "revoked_session", "user_own", "user_other", "admin")
SIGNED_IN = ("user_own", "user_other", "admin")


class Browsers:
    """The World's users, each with a signed-in session, and a revoked one."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.user = signed_in(world.url, world.keys[world.u1])
        self.admin = signed_in(world.url, world.admin_key)
        made = world.call("POST", f"/api/users/{world.u1}/keys", {}, world.admin_key).json()
        self.revoked = signed_in(world.url, made["api_key"])
        gone = world.call(
            "DELETE", f"/api/users/{world.u1}/keys/{made['key_id']}", None, world.admin_key
        )
        assert gone.status_code == 200
        self.tokens = {
            "user": csrf_of(self.user.get(f"{world.url}/ui/nodes", timeout=10).text),
            "admin": csrf_of(self.admin.get(f"{world.url}/ui/nodes", timeout=10).text),
        }

    def for_case(self, case: str) -> tuple[requests.Session, str | None]:
        if case == "no_session":
            return requests.Session(), None
        if case == "revoked_session":
            return self.revoked, None
        who = "admin" if case == "admin" else "user"
        return (self.admin if who == "admin" else self.user), self.tokens[who]


#: (method, path, json body, send the session's CSRF token) about `owner`'s records
Build = Callable[[World, str], tuple[str, str, Any, bool]]


@dataclass(frozen=True)
class Row:
    name: str
    build: Build
    own: int
    other: int
    admin: int
    #: what a browser without a live session gets (the sign-in form's redirect, mostly)
    signed_out: int = 302

    def expected(self, case: str) -> int:
        if case in ("no_session", "revoked_session"):
            return self.signed_out
        return {"user_own": self.own, "user_other": self.other, "admin": self.admin}[case]


def _get(path: str) -> Build:
    return lambda w, o: ("GET", path, None, False)


ROWS: list[Row] = [
    Row("root", _get("/"), 302, 302, 302),
    Row("ui", _get("/ui"), 302, 302, 302),
    Row("jobs list", _get("/ui/"), 200, 200, 200),
    Row("jobs of a user", lambda w, o: ("GET", f"/ui/?user={o}", None, False), 200, 404, 200),
    Row("job", lambda w, o: ("GET", f"/ui/jobs/{w.job(o)}", None, False), 200, 404, 200),
    Row(
        "job (scripts surface)",
        lambda w, o: ("GET", f"/ui/jobs/{w.script_job(o)}", None, False),
        200,
        404,
        200,
    ),
    Row("edit job", lambda w, o: ("GET", f"/ui/jobs/{w.job(o)}/edit", None, False), 200, 404, 200),
    Row(
        "execution",
        lambda w, o: ("GET", f"/ui/executions/{w.execution(o)}", None, False),
        200,
        404,
        200,
    ),
    Row("new job", _get("/ui/new-job"), 200, 200, 200),
    Row("charts", _get("/ui/charts"), 200, 200, 200),
    Row("users and keys", _get("/ui/users"), 200, 200, 200),
    Row("servers", _get("/ui/servers"), 200, 200, 200),
    Row("nodes", _get("/ui/nodes"), 200, 200, 200),
    Row("audit trail", _get("/ui/audit"), 403, 403, 200),
    Row("static files", _get("/ui/static/ui.js"), 200, 200, 200, signed_out=200),
    Row("sign-in form", _get("/ui/sign-in"), 302, 302, 302, signed_out=200),
    Row(
        "sign-in without the form's token",
        lambda w, o: ("POST", "/ui/sign-in", None, False),
        403,
        403,
        403,
        signed_out=403,
    ),
    Row(
        "sign-out without the session's token",
        lambda w, o: ("POST", "/ui/sign-out", None, False),
        403,
        403,
        403,
        signed_out=303,  # no live session: nothing to end, back to the form
    ),
    Row(
        "a page's API write without the token",
        lambda w, o: ("PATCH", f"/api/scheduler/jobs/{w.job(o)}/pause", None, False),
        403,
        403,
        403,
        signed_out=401,
    ),
    Row(
        "a page's API write with the token",
        lambda w, o: ("PATCH", f"/api/scheduler/jobs/{w.job(o)}/pause", None, True),
        200,
        404,
        200,
        signed_out=401,
    ),
]


@pytest.fixture(scope="module")
def browsers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browsers]:
    tmp = tmp_path_factory.mktemp("ui_permissions")
    settings = make_settings(tmp, auth_failure_limit=100_000)
    script = write_script(settings.script_roots[0], "hello.sh", "#!/bin/bash\necho hi\n")
    with running_server(settings) as live:
        yield Browsers(World(live, script))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_page_permission_cell(browsers: Browsers, row: Row, case: str) -> None:
    world = browsers.world
    owner = world.u1 if case == "user_own" else world.u2
    method, path, body, with_token = row.build(world, owner)
    browser, token = browsers.for_case(case)
    headers = {"X-CSRF-Token": token} if with_token and token else {}
    response = browser.request(
        method, world.url + path, json=body, headers=headers, allow_redirects=False, timeout=10
    )
    assert response.status_code == row.expected(case), (method, path, case, response.text[:300])
    if response.status_code == 302 and path.startswith("/ui/") and path != "/ui/sign-in":
        assert response.headers["location"].startswith("/ui/sign-in?next=")
    if is_page_path(path) and response.status_code in (403, 404) and method == "GET":
        assert response.headers["content-type"].startswith("text/html")


def _route_key(method: str, path: str) -> tuple[str, str]:
    path = path.split("?")[0].lstrip("/")
    path = re.sub(r"(?<=/)([0-9a-f]{24}|script_\d+)(?=/|$)", "<id>", path)
    path = re.sub(r"^ui/static/.+$", "ui/static/<id>", path)
    return method, path


def test_the_table_covers_every_page_route(browsers: Browsers) -> None:
    world = browsers.world
    routes = {
        (method, re.sub(r"<[^>]+>", "<id>", route.path))
        for route in world.server.app.router.routes
        for method in route.methods
        if is_page_path("/" + route.path) and method != "HEAD"
    }
    covered = {_route_key(*row.build(world, world.u1)[:2]) for row in ROWS}
    assert routes <= covered, routes - covered
