"""The dashboard over a real server on loopback, in open mode: every page's status and
content, the redirects, filters, what a page shows against what the API answers, CSRF
refusal of page-made requests, static files and packaging. Signing in with keys, and
what a user's key sees, are in tests/test_ui_sign_in.py; who may load which page is
the table of tests/test_ui_permissions.py."""

from __future__ import annotations

import configparser
import fnmatch
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api_support import (
    ThreadServer,
    make_settings,
    running_server,
    wait_for,
    write_script,
)

ROOT = Path(__file__).resolve().parent.parent
BASH_BOTH = '#!/bin/bash\necho "out: $1"\necho "trouble: $1" >&2\nexit 3\n'
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_of(html: str) -> str:
    found = META_CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return unescape(found.group(1))


def finished(server: ThreadServer, execution_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data: dict[str, Any] = requests.get(
            f"{server.url}/api/scheduler/executions/{execution_id}", timeout=5
        ).json()["data"]
        return data if data["status"] not in ("queued", "running", "scheduled") else None

    return wait_for(done, 15, f"execution {execution_id} to finish")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An open-mode server with a user, a class job, a script job that ran once."""
    tmp = tmp_path_factory.mktemp("ui_open")
    settings = make_settings(tmp)
    script = write_script(tmp / "scripts", "both.sh", BASH_BOTH)
    with running_server(settings) as server:
        base = server.url
        user = requests.post(
            f"{base}/api/users/", json={"name": "Ada Lovelace", "email": "ada@example.com"}
        ).json()["user_id"]
        job = requests.post(
            f"{base}/api/scheduler/jobs",
            json={
                "user_id": user,
                "job_class_string": "jobs.echo.EchoJob",
                "name": "Weekday Echo",
                "minute": "30",
                "hour": "9",
                "day_of_week": "mon-fri",
                "pub_args": ["a"],
            },
        ).json()["job_id"]
        scheduled = requests.post(
            f"{base}/api/schedule-job",
            json={
                "job_id": "nightly_both",
                "job_type": "bash",
                "script_path": str(script),
                "run_date": "2031-01-01T00:00:00",
                "args": ["x"],
            },
        )
        assert scheduled.status_code == 200, scheduled.text
        run = requests.post(f"{base}/api/scheduler/jobs/nightly_both/run").json()
        finished(server, run["execution_id"])
        yield {"server": server, "user": user, "job": job, "execution": run["execution_id"]}


def get(world: dict[str, Any], path: str, **kw: Any) -> requests.Response:
    return requests.get(world["server"].url + path, timeout=10, **kw)


def test_root_and_ui_redirect_to_the_dashboard(world: dict[str, Any]) -> None:
    for path in ("/", "/ui"):
        response = get(world, path, allow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == "/ui/"


def test_every_page_answers_200_in_open_mode(world: dict[str, Any]) -> None:
    pages = [
        "/ui/",
        f"/ui/jobs/{world['job']}",
        "/ui/jobs/nightly_both",
        f"/ui/jobs/{world['job']}/edit",
        "/ui/jobs/nightly_both/edit",
        f"/ui/executions/{world['execution']}",
        "/ui/new-job",
        "/ui/new-job?kind=script",
        "/ui/charts",
        "/ui/users",
        "/ui/servers",
        "/ui/nodes",
        "/ui/audit",
    ]
    for path in pages:
        response = get(world, path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "<script>" not in response.text  # no inline script: the CSP forbids it
        csrf_of(response.text)


def test_jobs_page_lists_both_surfaces_with_api_values(world: dict[str, Any]) -> None:
    html = get(world, "/ui/").text
    assert "Weekday Echo" in html and "nightly_both" in html
    api_job = get(world, f"/api/scheduler/jobs/{world['job']}").json()["data"]
    utc = datetime.fromisoformat(api_job["next_run_time"]).astimezone(UTC)
    assert f'<time datetime="{utc.isoformat()}"' in html
    assert "at 09:30 on Monday to Friday (UTC)" in html  # the API's schedule.description
    # the script job's last run, with its status, links to the execution
    assert f'href="/ui/executions/{world["execution"]}"' in html
    assert "st-failed" in html  # the script exits 3
    stats = get(world, "/api/scheduler/stats").json()["stats"]
    assert f"<dt>Jobs</dt><dd>{stats['total_jobs']}</dd>" in html


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("q=weekday", "Weekday Echo", "nightly_both"),
        ("q=NIGHTLY", "nightly_both", "Weekday Echo"),
        ("kind=bash", "nightly_both", "Weekday Echo"),
        ("kind=class", "Weekday Echo", "nightly_both"),
        ("state=paused", "No job matches.", "Weekday Echo"),
        ("user=none", "nightly_both", "Weekday Echo"),
    ],
)
def test_jobs_page_filters(world: dict[str, Any], query: str, shown: str, hidden: str) -> None:
    html = get(world, f"/ui/?{query}").text
    table = html[html.index('<p class="shown"') :]
    assert shown in table
    assert hidden not in table


def test_jobs_page_filter_by_user_and_bad_filters(world: dict[str, Any]) -> None:
    html = get(world, f"/ui/?user={world['user']}").text
    table = html[html.index('<p class="shown"') :]
    assert "Weekday Echo" in table and "nightly_both" not in table
    assert get(world, "/ui/?state=sleeping").status_code == 400
    assert get(world, "/ui/?user=xyz").status_code == 400
    assert get(world, "/ui/?user=0123456789abcdef01234567").status_code == 404


def test_job_page_words_next_ten_fires_and_settings(world: dict[str, Any]) -> None:
    html = get(world, f"/ui/jobs/{world['job']}").text
    assert '<p class="words">At 09:30 on Monday to Friday (UTC)</p>' in html
    listed = html[html.index('id="next-runs"') : html.index("</ol>", html.index('id="next-runs"'))]
    fires = re.findall(r'<li><time datetime="([^"]+)"', listed)
    # exactly what GET .../next-runs?count=10 answers
    api = get(world, f"/api/scheduler/jobs/{world['job']}/next-runs?count=10").json()["data"]
    assert len(fires) == 10
    assert [datetime.fromisoformat(f) for f in fires] == [
        datetime.fromisoformat(r["fire_time"]) for r in api
    ]
    assert datetime.fromisoformat(fires[0]) > datetime.now(UTC)
    assert "jobs.echo.EchoJob" in html and "Ada Lovelace" in html
    assert "max_instances" in html and "No executions yet." in html
    assert 'data-events-url="/api/scheduler/events?job_id=' in html


def test_a_paused_jobs_page_says_it_has_no_next_runs(world: dict[str, Any]) -> None:
    base = world["server"].url
    assert requests.patch(f"{base}/api/scheduler/jobs/{world['job']}/pause").status_code == 200
    try:
        html = get(world, f"/ui/jobs/{world['job']}").text
        assert "is paused: it has no next runs until it is resumed" in html
        assert 'data-action="resume"' in html
    finally:
        requests.patch(f"{base}/api/scheduler/jobs/{world['job']}/resume")


def test_job_page_of_a_script_job_lists_its_execution(world: dict[str, Any]) -> None:
    html = get(world, "/ui/jobs/nightly_both").text
    assert '<p class="words">Once, at 2031-01-01 00:00:00 UTC</p>' in html
    assert "None: the schedule fires no more." not in html  # one run is still to come
    assert f"/ui/executions/{world['execution']}" in html
    assert "Executions <small>(1, newest first)</small>" in html
    assert "date[2031-01-01 00:00:00 UTC]" in html  # as the scripts surface shows it
    assert 'class="chart"' in html and "<svg" in html


def test_execution_page_tells_stderr_apart(world: dict[str, Any]) -> None:
    html = get(world, f"/ui/executions/{world['execution']}").text
    stdout = re.search(r'id="exec-stdout"[^>]*>(.*?)</pre>', html, re.DOTALL)
    stderr = re.search(r'id="exec-stderr"[^>]*>(.*?)</pre>', html, re.DOTALL)
    assert stdout and stderr
    assert stdout.group(1).strip() == "out: x"
    assert stderr.group(1).strip() == "trouble: x"
    assert "st-failed" in html and "<dt>Exit code</dt><dd>3</dd>" in html
    assert "manual" in html


def test_missing_things_are_html_404s(world: dict[str, Any]) -> None:
    for path in ("/ui/jobs/no_such_job", "/ui/executions/0123456789abcdef01234567"):
        response = get(world, path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
    assert get(world, "/ui/executions/nothex").status_code == 400


def test_users_servers_and_nodes_pages(world: dict[str, Any]) -> None:
    html = get(world, "/ui/users").text
    assert "Ada Lovelace" in html and "ada@example.com" in html
    assert f'href="/ui/?user={world["user"]}"' in html
    assert "No API keys." in html and 'data-action="create-key"' in html
    assert "No servers yet" in get(world, "/ui/servers").text
    nodes = get(world, "/ui/nodes").text
    listed = get(world, "/api/scheduler/nodes").json()["nodes"]
    assert listed and all(n["node_id"] in nodes for n in listed)
    assert "(this one)" in nodes and "alive" in nodes


def test_audit_page_lists_the_trail_newest_first(world: dict[str, Any]) -> None:
    html = get(world, "/ui/audit").text
    api = get(world, "/api/audit?limit=100").json()
    assert f"Audit trail <small>({api['total']}, newest first)" in html
    first = api["data"][0]
    assert f"<code>{first['method']} {first['path']}</code>" in html


def test_static_files_and_gzip(world: dict[str, Any]) -> None:
    js = get(world, "/ui/static/ui.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    css = get(world, "/ui/static/ui.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    page = get(world, f"/ui/jobs/{world['job']}", headers={"Accept-Encoding": "gzip"})
    assert page.headers.get("content-encoding") == "gzip"
    assert "Weekday Echo" in page.text
    assert "render;dur=" in page.headers["server-timing"]


def test_open_mode_page_requests_need_the_csrf_token(world: dict[str, Any]) -> None:
    base = world["server"].url
    browser = requests.Session()
    html = browser.get(f"{base}/ui/").text
    assert "cronwell_session" in browser.cookies
    token = csrf_of(html)
    path = f"{base}/api/scheduler/jobs/{world['job']}/pause"
    refused = browser.patch(path, timeout=5)
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["detail"]
    wrong = browser.patch(path, headers={"X-CSRF-Token": "not-it"}, timeout=5)
    assert wrong.status_code == 403
    assert (
        browser.get(f"{base}/api/scheduler/jobs/{world['job']}").json()["data"]["is_paused"]
        is False
    )
    ok = browser.patch(path, headers={"X-CSRF-Token": token}, timeout=5)
    assert ok.status_code == 200
    resumed = browser.patch(
        f"{base}/api/scheduler/jobs/{world['job']}/resume",
        headers={"X-CSRF-Token": token},
        timeout=5,
    )
    assert resumed.status_code == 200
    # the scripts surface's envelope for its own paths
    scripts = browser.put(f"{base}/api/pause-job/nightly_both", timeout=5)
    assert scripts.status_code == 403 and "error" in scripts.json()
    # a client without the page's cookie (curl, the seeds' walkthroughs) is unaffected
    assert requests.put(f"{base}/api/pause-job/nightly_both", timeout=5).status_code == 200
    assert requests.put(f"{base}/api/resume-job/nightly_both", timeout=5).status_code == 200


def test_validation_errors_name_their_field(world: dict[str, Any]) -> None:
    base = world["server"].url
    bad = requests.post(
        f"{base}/api/scheduler/jobs",
        json={
            "user_id": world["user"],
            "job_class_string": "jobs.echo.EchoJob",
            "name": "x",
            "minute": "0",
            "hour": "25",
        },
        timeout=5,
    )
    assert bad.status_code == 422
    assert bad.headers["X-Cronwell-Field"] == "hour"
    assert list(bad.json()) == ["detail"]
    path = requests.post(
        f"{base}/api/schedule-job",
        json={
            "job_id": "j",
            "job_type": "bash",
            "script_path": "/etc/passwd",
            "run_date": "2031-01-01T00:00:00",
        },
        timeout=5,
    )
    assert path.status_code == 400 and path.headers["X-Cronwell-Field"] == "script_path"


def test_package_data_ships_every_template_and_static_file() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = [p for p in config["options.package_data"]["api.ui"].split() if p]
    base = ROOT / "api" / "ui"
    files = [
        str(p.relative_to(base))
        for folder in ("templates", "static")
        for p in (base / folder).iterdir()
        if p.is_file()
    ]
    assert files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert unshipped == []


def test_the_jobs_page_follows_the_event_stream(world: dict[str, Any]) -> None:
    html = get(world, "/ui/").text
    assert 'data-events-url="/api/scheduler/events"' in html
    assert 'id="jobs-live" data-live-region' in html


def test_the_jobs_list_pages_past_its_page_size(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.ui import reads

    monkeypatch.setattr(reads, "JOBS_PER_PAGE", 1)
    first = get(world, "/ui/?kind=").text
    assert "Showing 1 to 1 of 2 jobs." in first and "page 1 of 2" in first
    assert "Weekday Echo" in first and "nightly_both" not in first.split('class="shown"')[1]
    assert 'href="?page=2"' in first
    second = get(world, "/ui/?page=2").text
    assert "Showing 2 to 2 of 2 jobs." in second and "nightly_both" in second
    assert "Previous page" in second
    assert get(world, "/ui/?page=0").status_code == 400
    assert "Showing 0 to 0 of 2 jobs." in get(world, "/ui/?page=9").text


def test_the_openapi_document_leaves_the_pages_out(world: dict[str, Any]) -> None:
    paths = get(world, "/openapi.json").json()["paths"]
    assert paths and not [p for p in paths if p == "/" or p == "/ui" or p.startswith("/ui/")]
