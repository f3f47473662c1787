"""Signing in to the dashboard with stored API keys, on a real server on loopback: the
key is checked as an API request's key (the same principal, revocation, the failure
guard), the session cookie's attributes, CSRF on every write a page makes, sign-out,
and what a user's key sees on the pages (its own records, nothing else)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api_support import make_settings, running_server, write_script
from tests.test_api_permissions import World
from tests.ui_support import csrf_of, sign_in, signed_in


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("ui_sign_in")
    settings = make_settings(tmp, auth_failure_limit=100_000)
    script = write_script(settings.script_roots[0], "hello.sh", "#!/bin/bash\necho hi\n")
    with running_server(settings) as live:
        yield World(live, script)


def test_an_open_mode_session_is_worth_nothing_once_a_key_exists(tmp_path: Path) -> None:
    with running_server(make_settings(tmp_path)) as server:
        browser = requests.Session()
        assert browser.get(f"{server.url}/ui/", timeout=5).status_code == 200
        assert "cronwell_session" in browser.cookies  # open mode: an anonymous session
        assert browser.get(f"{server.url}/ui/sign-in", allow_redirects=False).status_code == 302
        user = requests.post(
            f"{server.url}/api/users/", json={"name": "A", "email": "a@example.com"}, timeout=5
        ).json()["user_id"]
        made = requests.post(f"{server.url}/api/users/{user}/keys", json={}, timeout=5)
        assert made.status_code == 200  # the first key closes the service
        page = browser.get(f"{server.url}/ui/", allow_redirects=False, timeout=5)
        assert page.status_code == 302 and page.headers["location"].startswith("/ui/sign-in")
        assert browser.get(f"{server.url}/api/scheduler/jobs", timeout=5).status_code == 401


def test_pages_redirect_to_the_sign_in_form(world: World) -> None:
    response = requests.get(f"{world.url}/ui/jobs/abc?x=1", allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert response.headers["location"] == "/ui/sign-in?next=/ui/jobs/abc%3Fx%3D1"
    assert requests.get(f"{world.url}/ui/sign-in", timeout=5).status_code == 200
    assert requests.get(f"{world.url}/ui/static/ui.css", timeout=5).status_code == 200


def test_sign_in_checks_the_key_as_the_api_does(world: World) -> None:
    for key in ("cw_not-a-key", world.revoked_key):
        _, refused = sign_in(world.url, key)
        assert refused.status_code == 401
        assert "That API key is not valid (or was revoked)." in refused.text
        assert "cronwell_session" not in refused.headers.get("set-cookie", "")
    _, empty = sign_in(world.url, "")
    assert empty.status_code == 400
    forged = requests.post(
        f"{world.url}/ui/sign-in",
        data={"key": world.admin_key, "csrf_token": "made-up"},
        allow_redirects=False,
        timeout=5,
    )
    assert forged.status_code == 403


def test_the_session_cookie_and_what_a_user_key_sees(world: World) -> None:
    own_job, other_job = world.job(world.u1), world.job(world.u2)
    own_script, other_script = world.script_job(world.u1), world.script_job(world.u2)
    own_run, other_run = world.execution(world.u1), world.execution(world.u2)
    own_server, other_server = world.server_record(world.u1), world.server_record(world.u2)
    browser, response = sign_in(world.url, world.keys[world.u1], "/ui/users")
    assert response.status_code == 303 and response.headers["location"] == "/ui/users"
    cookie = response.headers["set-cookie"]
    assert "cronwell_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; set when served over TLS
    assert world.keys[world.u1] not in cookie

    jobs = browser.get(f"{world.url}/ui/", timeout=10).text
    assert own_job in jobs and own_script in jobs
    assert other_job not in jobs and other_script not in jobs
    api_stats = world.call("GET", "/api/scheduler/stats", None, world.keys[world.u1]).json()
    assert f"<dt>Jobs</dt><dd>{api_stats['stats']['total_jobs']}</dd>" in jobs
    for path in (f"/ui/jobs/{own_job}", f"/ui/jobs/{own_script}", f"/ui/executions/{own_run}"):
        assert browser.get(world.url + path, timeout=10).status_code == 200, path
    for path in (
        f"/ui/jobs/{other_job}",
        f"/ui/jobs/{other_script}",
        f"/ui/jobs/{other_job}/edit",
        f"/ui/executions/{other_run}",
        f"/ui/?user={world.u2}",
    ):
        hidden = browser.get(world.url + path, timeout=10)
        assert hidden.status_code == 404, path
        assert "not found" in hidden.text.lower()  # as a missing record: nothing more
    assert browser.get(f"{world.url}/ui/audit", timeout=10).status_code == 403
    users = browser.get(f"{world.url}/ui/users", timeout=10).text
    assert world.u1 in users and world.u2 not in users and world.admin_id not in users
    assert "Your account" in users and "(this session's)" in users
    servers = browser.get(f"{world.url}/ui/servers", timeout=10).text
    assert own_server in servers and other_server not in servers
    charts = browser.get(f"{world.url}/ui/charts", timeout=10)
    assert charts.status_code == 200
    # the JSON API through the session: the same principal as the key itself
    listed = browser.get(f"{world.url}/api/scheduler/jobs", timeout=10).json()["data"]
    assert {j["_id"] for j in listed} == {
        j["_id"]
        for j in world.call("GET", "/api/scheduler/jobs", None, world.keys[world.u1]).json()["data"]
    }


def test_writes_from_a_page_need_its_token_and_are_audited_as_the_key(world: World) -> None:
    job = world.job(world.u1)
    browser = signed_in(world.url, world.keys[world.u1])
    token = csrf_of(browser.get(f"{world.url}/ui/jobs/{job}", timeout=10).text)
    pause = f"{world.url}/api/scheduler/jobs/{job}/pause"
    refused = browser.patch(pause, timeout=10)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    assert browser.patch(pause, headers={"X-CSRF-Token": "not-it"}, timeout=10).status_code == 403
    assert browser.patch(pause, headers={"X-CSRF-Token": token}, timeout=10).status_code == 200
    # another user's job through the session: 404, as with the key
    other = world.job(world.u2)
    assert (
        browser.patch(
            f"{world.url}/api/scheduler/jobs/{other}/pause",
            headers={"X-CSRF-Token": token},
            timeout=10,
        ).status_code
        == 404
    )
    # the scripts surface's envelope on its own paths
    script = world.script_job(world.u1)
    scripts = browser.put(f"{world.url}/api/pause-job/{script}", timeout=10)
    assert scripts.status_code == 403 and list(scripts.json()) == ["error"]
    trail = world.call("GET", f"/api/audit?user_id={world.u1}", None, world.admin_key).json()
    entries = [(e["path"], e["status_code"]) for e in trail["data"]]
    assert (f"/api/scheduler/jobs/{job}/pause", 200) in entries
    assert (f"/api/scheduler/jobs/{job}/pause", 403) in entries  # refusals are recorded too


def test_a_revoked_keys_session_ends_on_its_next_request(world: World) -> None:
    made = world.call("POST", f"/api/users/{world.u1}/keys", {"name": "t"}, world.admin_key).json()
    browser = signed_in(world.url, made["api_key"])
    assert browser.get(f"{world.url}/ui/", timeout=10).status_code == 200
    gone = world.call(
        "DELETE", f"/api/users/{world.u1}/keys/{made['key_id']}", None, world.admin_key
    )
    assert gone.status_code == 200
    page = browser.get(f"{world.url}/ui/", allow_redirects=False, timeout=10)
    assert page.status_code == 302 and page.headers["location"].startswith("/ui/sign-in")
    assert browser.get(f"{world.url}/api/scheduler/jobs", timeout=10).status_code == 401


def test_a_promoted_users_session_acts_as_admin_at_once(world: World) -> None:
    user = world.user()
    browser = signed_in(world.url, world.key(user))
    assert browser.get(f"{world.url}/ui/audit", timeout=10).status_code == 403
    world.call("PUT", f"/api/users/{user}", {"role": "admin"}, world.admin_key)
    assert browser.get(f"{world.url}/ui/audit", timeout=10).status_code == 200


def test_sign_out_needs_the_token_and_ends_the_session(world: World) -> None:
    browser, response = sign_in(world.url, world.admin_key)
    html = browser.get(f"{world.url}/ui/", timeout=10).text
    assert "Sign out" in html
    token = csrf_of(html)
    assert browser.post(f"{world.url}/ui/sign-out", data={}, timeout=10).status_code == 403
    out = browser.post(
        f"{world.url}/ui/sign-out", data={"csrf_token": token}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 303 and out.headers["location"] == "/ui/sign-in"
    stale = requests.Session()
    stale.cookies.set("cronwell_session", response.cookies["cronwell_session"])
    assert stale.get(f"{world.url}/ui/", allow_redirects=False, timeout=10).status_code == 302
    assert stale.get(f"{world.url}/api/scheduler/jobs", timeout=10).status_code == 401


def test_sign_in_never_redirects_off_the_dashboard(world: World) -> None:
    for target in ("//evil.example/ui/", "https://evil.example/", "/ui/\\\\evil"):
        _, response = sign_in(world.url, world.admin_key, target)
        assert response.status_code == 303 and response.headers["location"] == "/ui/", target


def test_failed_sign_ins_count_toward_the_guard(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth_failure_limit=3)
    with running_server(settings) as server:
        user = requests.post(
            f"{server.url}/api/users/", json={"name": "A", "email": "a@example.com"}, timeout=5
        ).json()["user_id"]
        key = requests.post(f"{server.url}/api/users/{user}/keys", json={}, timeout=5).json()
        browser = signed_in(server.url, key["api_key"])  # before the guesses
        for _ in range(3):
            assert sign_in(server.url, "cw_wrong")[1].status_code == 401
        locked = sign_in(server.url, key["api_key"])[1]  # even the right key, for a while
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
        assert re.search(r"try again in \d+ s", locked.text)
        # and the API answers the same address the same way
        api = requests.get(
            f"{server.url}/api/scheduler/jobs", headers={"X-API-Key": key["api_key"]}, timeout=5
        )
        assert api.status_code == 429
        # a session from that address waits too: its pages say so, as HTML
        for path in ("/ui/", "/ui/sign-in"):
            page = browser.get(server.url + path, allow_redirects=False, timeout=5)
            assert page.status_code == 429, path
            assert page.headers["content-type"].startswith("text/html")
            assert "Too many attempts" in page.text and page.headers["Retry-After"]


def test_the_live_streams_answer_a_session_as_its_key(world: World) -> None:
    own_run, other_run = world.execution(world.u1), world.execution(world.u2)
    browser = signed_in(world.url, world.keys[world.u1])
    cells = [
        (f"/api/scheduler/executions/{own_run}/stream", 200),
        (f"/api/scheduler/executions/{other_run}/stream", 404),
        ("/api/scheduler/events", 200),
        (f"/api/scheduler/events?user_id={world.u2}", 404),
    ]
    for path, status in cells:
        with browser.get(world.url + path, stream=True, timeout=10) as answer:
            assert answer.status_code == status, path
    # a finished run's stream sends its stored output and its end at once
    with browser.get(
        f"{world.url}/api/scheduler/executions/{own_run}/stream", stream=True, timeout=10
    ) as answer:
        body = answer.text
    assert "event: end" in body and '"stream": "stdout"' in body


def test_sign_in_and_sign_out_are_in_the_audit_trail(world: World) -> None:
    user = world.user()
    browser = signed_in(world.url, world.key(user))
    token = csrf_of(browser.get(f"{world.url}/ui/", timeout=10).text)
    out = browser.post(f"{world.url}/ui/sign-out", data={"csrf_token": token}, timeout=10)
    assert out.status_code == 200  # followed to the sign-in form
    trail = world.call("GET", f"/api/audit?user_id={user}", None, world.admin_key).json()
    assert [(e["method"], e["path"], e["status_code"]) for e in trail["data"]] == [
        ("POST", "/ui/sign-out", 303),
        ("POST", "/ui/sign-in", 303),
    ]
