"""Error envelopes and status codes on every endpoint, Sanic's own errors included;
API keys; engine stopped and store failures (503) without tracebacks; OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sanic import Request
from sanic.response import HTTPResponse

from api.ui.session import is_page_path
from tests.api_support import ThreadServer, make_settings, running_server

MISSING = "0123456789abcdef01234567"
MAX_BODY = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("errors_api")
    with running_server(make_settings(tmp, max_body=MAX_BODY)) as live:
        yield live


def send(
    server: ThreadServer,
    method: str,
    path: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    return requests.request(
        method,
        server.url + path,
        data=data,
        timeout=10,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def check(response: requests.Response, status: int, key: str) -> str:
    """The status, the surface's one-key envelope, and never a traceback."""
    assert response.status_code == status, (response.request.method, response.url, response.text)
    body = response.json()
    assert list(body) == [key], body
    assert "Traceback" not in response.text and 'File "' not in response.text
    message: str = body[key]
    return message


# Every route, with a request that must fail there: (method, path, body, status).
# Bodies are JSON text; None sends no body.
EVERY_ENDPOINT_ERROR: list[tuple[str, str, str | None, int]] = [
    ("GET", "/api/job/nope", None, 404),
    ("GET", "/api/jobs?x=1", None, 200),  # a plain read: nothing to refuse
    ("POST", "/api/schedule-job", '{"job_id": "a"}', 400),
    ("DELETE", "/api/remove-job/nope", None, 404),
    ("PUT", "/api/pause-job/nope", None, 404),
    ("PUT", "/api/resume-job/nope", None, 404),
    ("GET", "/api/health", None, 200),
    ("POST", "/api/users", '{"name": "x"}', 400),
    ("GET", "/api/users", None, 200),
    ("GET", "/api/users/bad", None, 400),
    ("PUT", f"/api/users/{MISSING}", '{"name": "x"}', 404),
    ("DELETE", f"/api/users/{MISSING}", None, 404),
    ("POST", f"/api/users/{MISSING}/keys", None, 404),
    ("GET", "/api/users/bad/keys", None, 400),
    ("DELETE", f"/api/users/{MISSING}/keys/{MISSING}", None, 404),
    ("GET", "/api/audit?limit=0", None, 400),
    ("POST", "/api/servers/create", '{"port": "x"}', 400),
    ("GET", "/api/servers", None, 200),
    ("GET", f"/api/servers/{MISSING}", None, 404),
    ("PUT", "/api/servers/bad", '{"port": 1}', 400),
    ("DELETE", f"/api/servers/{MISSING}", None, 404),
    ("GET", f"/api/servers/user/{MISSING}", None, 404),
    ("POST", "/api/scheduler/jobs", '{"user_id": "x"}', 400),
    ("GET", "/api/scheduler/jobs", None, 200),
    ("GET", f"/api/scheduler/jobs/{MISSING}", None, 404),
    ("PUT", f"/api/scheduler/jobs/{MISSING}", '{"name": "x"}', 404),
    ("DELETE", "/api/scheduler/jobs/bad%20id", None, 400),
    ("PATCH", f"/api/scheduler/jobs/{MISSING}/pause", None, 404),
    ("PATCH", f"/api/scheduler/jobs/{MISSING}/resume", None, 404),
    ("POST", f"/api/scheduler/jobs/{MISSING}/run", None, 404),
    ("GET", f"/api/scheduler/jobs/{MISSING}/next-runs", None, 404),
    (
        "POST",
        f"/api/scheduler/jobs/{MISSING}/backfill",
        '{"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T01:00:00Z"}',
        404,
    ),
    ("GET", f"/api/scheduler/users/{MISSING}/jobs", None, 404),
    ("GET", "/api/scheduler/executions?limit=0", None, 400),
    ("GET", "/api/scheduler/executions/bad", None, 400),
    ("POST", f"/api/scheduler/executions/{MISSING}/cancel", None, 404),
    ("GET", f"/api/scheduler/executions/{MISSING}/stream", None, 404),
    ("GET", "/api/scheduler/events?user_id=bad", None, 400),
    ("GET", "/metrics", None, 200),
    ("GET", "/api/scheduler/available-jobs", None, 200),
    ("GET", f"/api/scheduler/stats?user_id={MISSING}", None, 404),
    ("GET", "/api/scheduler/health", None, 200),
    ("GET", "/api/scheduler/nodes", None, 200),
    ("GET", "/openapi.json", None, 200),
    ("GET", "/docs", None, 200),
    ("GET", "/docs/nope", None, 404),  # only the Swagger UI bundle's own files
]


def _route_key(method: str, path: str) -> tuple[str, str]:
    path = path.split("?")[0].strip("/")
    path = re.sub(r"(?<=/)(nope|bad|bad%20id|[0-9a-f]{24})(?=/|$)", "<id>", path)
    return method, path


def test_the_table_covers_every_route(server: ThreadServer) -> None:
    routes = {
        (method, re.sub(r"<[^>]+>", "<id>", route.path))
        for route in server.app.router.routes
        for method in route.methods
        if not is_page_path("/" + route.path)  # HTML pages: tests/test_ui_pages.py
    }
    covered = {_route_key(method, path) for method, path, _, _ in EVERY_ENDPOINT_ERROR}
    assert routes == covered


@pytest.mark.parametrize(("method", "path", "body", "status"), EVERY_ENDPOINT_ERROR)
def test_every_endpoint_answers_errors_in_its_envelope(
    server: ThreadServer, method: str, path: str, body: str | None, status: int
) -> None:
    response = send(server, method, path, body.encode() if body else None)
    if status == 200:
        assert response.status_code == 200, response.text
        return
    scheduler = ("/api/users", "/api/servers", "/api/scheduler", "/api/audit")
    key = "detail" if path.startswith(scheduler) else "error"
    assert check(response, status, key)


BODY_ENDPOINTS = [
    ("POST", "/api/schedule-job", "error"),
    ("POST", "/api/users/", "detail"),
    ("POST", "/api/servers/create", "detail"),
    ("POST", "/api/scheduler/jobs", "detail"),
]


@pytest.mark.parametrize(("method", "path", "key"), BODY_ENDPOINTS)
@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "Invalid JSON body"),
        (b'{"a": NaN}', "Invalid JSON body"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b'"text"', "must be a JSON object, not str"),
        (b"null", "must be a JSON object, not null"),
        (b"", "the body is empty"),
        (b"\xff\xfe\x00", "Invalid JSON body"),
        (b"[" * 1500 + b"]" * 1500, "nested too deeply"),
    ],
)
def test_bad_bodies_are_400(
    server: ThreadServer, method: str, path: str, key: str, raw: bytes, fragment: str
) -> None:
    assert fragment in check(send(server, method, path, raw), 400, key)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"/api/users/{MISSING}"),
        ("PUT", f"/api/servers/{MISSING}"),
        ("PUT", f"/api/scheduler/jobs/{MISSING}"),
    ],
)
def test_bad_bodies_on_updates(server: ThreadServer, method: str, path: str) -> None:
    # the id is checked first (404); a malformed body to an existing record is tested
    # in the surface suites
    check(send(server, method, path, b"{oops"), 404, "detail")


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/api/nothing", "error"),
        ("/nothing", "error"),
        ("/api/scheduler/nothing", "detail"),
        ("/api/users/a/b/c", "detail"),
        ("/api/servers/x/y/z", "detail"),
    ],
)
def test_unknown_routes_are_404_in_the_surface_envelope(
    server: ThreadServer, path: str, key: str
) -> None:
    assert check(send(server, "GET", path), 404, key) == f"Not found: {path}"


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("POST", "/api/jobs", "error"),
        ("GET", "/api/schedule-job", "error"),
        ("DELETE", "/api/health", "error"),
        ("DELETE", "/api/scheduler/stats", "detail"),
        ("PATCH", "/api/users/", "detail"),
        ("POST", "/api/scheduler/jobs/x/pause", "detail"),
    ],
)
def test_wrong_method_is_405(server: ThreadServer, method: str, path: str, key: str) -> None:
    response = send(server, method, path)
    message = check(response, 405, key)
    assert message.startswith(f"Method {method} not allowed for {path}")
    assert response.headers.get("Allow")


@pytest.mark.parametrize(
    ("path", "key"), [("/api/schedule-job", "error"), ("/api/users/", "detail")]
)
def test_oversized_body_is_413(server: ThreadServer, path: str, key: str) -> None:
    big = b'{"name": "' + b"x" * (MAX_BODY * 2) + b'"}'
    message = check(send(server, "POST", path, big), 413, key)
    assert message == f"Request body too large (limit {MAX_BODY} bytes)"


def test_422_on_the_scheduler_surface_400_on_the_scripts_surface(server: ThreadServer) -> None:
    check(send(server, "POST", "/api/users/", b'{"name": 1, "email": "a@b.co"}'), 422, "detail")
    check(
        send(
            server,
            "POST",
            "/api/schedule-job",
            b'{"job_id": 1, "job_type": "bash", "script_path": "/x", "run_date": "2099-01-01"}',
        ),
        400,
        "error",
    )


def test_api_keys(tmp_path: Path) -> None:
    with running_server(make_settings(tmp_path, api_keys=("k-one", "k-two"))) as live:
        assert requests.get(f"{live.url}/api/health", timeout=5).status_code == 200
        assert requests.get(f"{live.url}/api/scheduler/health", timeout=5).status_code == 200
        for documentation in ("/openapi.json", "/docs"):  # what a browser opens keyless
            assert requests.get(live.url + documentation, timeout=5).status_code == 200
        for path, key in (
            ("/api/jobs", "error"),
            ("/api/users/", "detail"),
            ("/api/scheduler/stats", "detail"),
            ("/api/scheduler/nodes", "detail"),
            ("/api/nothing", "error"),
        ):
            message = check(requests.get(live.url + path, timeout=5), 401, key)
            assert message.startswith("Missing API key")
            wrong = requests.get(live.url + path, headers={"X-API-Key": "k-three"}, timeout=5)
            check(wrong, 401, key)
        for good in ("k-one", "k-two"):
            assert (
                requests.get(
                    f"{live.url}/api/jobs", headers={"X-API-Key": good}, timeout=5
                ).status_code
                == 200
            )
        posted = requests.post(
            f"{live.url}/api/users/",
            json={"name": "A", "email": "a@example.com"},
            headers={"X-API-Key": "k-one"},
            timeout=5,
        )
        assert posted.status_code == 200
        assert live.app.ctx.store.list_users()[0].email == "a@example.com"
        refused = requests.post(
            f"{live.url}/api/users/", json={"name": "B", "email": "b@example.com"}, timeout=5
        )
        check(refused, 401, "detail")
        assert len(live.app.ctx.store.list_users()) == 1


async def _boom(request: Request) -> HTTPResponse:
    raise RuntimeError("kaboom from a handler")


def test_engine_stopped_and_store_failure_are_503(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    server = ThreadServer(settings)
    server.app.add_route(_boom, "/api/boom", name="boom_scripts")
    server.app.add_route(_boom, "/api/scheduler/boom", name="boom_scheduler")
    server.start()
    try:
        assert check(send(server, "GET", "/api/boom"), 500, "error") == (
            "Internal server error: kaboom from a handler"
        )
        check(send(server, "GET", "/api/scheduler/boom"), 500, "detail")

        server.app.ctx.scheduler.shutdown(5)
        health = requests.get(f"{server.url}/api/health", timeout=5)
        assert health.status_code == 503
        assert health.json() == {"status": "unhealthy", "scheduler_running": False}
        other = requests.get(f"{server.url}/api/scheduler/health", timeout=5)
        assert other.status_code == 503 and other.json()["status"] == "unhealthy"
        check(send(server, "PUT", "/api/pause-job/whatever"), 503, "error")
        check(send(server, "POST", f"/api/scheduler/jobs/{MISSING}/run"), 503, "detail")

        # a store that is away is a 503 worth retrying, not a server bug
        server.app.ctx.store.close()
        message = check(send(server, "GET", "/api/jobs"), 503, "error")
        assert message.startswith("Store unavailable: ") and "not open" in message
        check(send(server, "GET", "/api/users/"), 503, "detail")
        refused = send(server, "GET", "/api/scheduler/executions")
        check(refused, 503, "detail")
        assert refused.headers["Retry-After"] == "2"
    finally:
        server.stop()


def test_openapi_lists_every_real_route(server: ThreadServer) -> None:
    spec: dict[str, Any] = requests.get(f"{server.url}/openapi.json", timeout=5).json()
    assert spec["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = {
        (m, "/" + re.sub(r"<([a-z_]+)(:[^>]*)?>", r"{\1}", r.path).strip("/"))
        for r in server.app.router.routes
        for m in r.methods
        if not r.path.startswith("docs/")  # the docs page's files are not part of the API
        and not is_page_path("/" + r.path.strip("/"))
    }
    assert documented == served
    schedule = spec["paths"]["/api/schedule-job"]["post"]
    schema = schedule["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["job_id", "job_type", "script_path", "run_date"]
    assert schema["properties"]["args"] == {
        "type": "array",
        "items": {"type": "string", "maxLength": 32_768},
        "maxItems": 1000,
        "example": ["--full", "--compress"],
        "nullable": True,  # an explicit null means "not given"
    }
    job = spec["paths"]["/api/scheduler/jobs/{job_id}"]["put"]
    assert "required" not in job["requestBody"]["content"]["application/json"]["schema"]
    assert [p["name"] for p in job["parameters"]] == ["job_id"]
    listing = spec["paths"]["/api/scheduler/executions"]["get"]
    assert [p["name"] for p in listing["parameters"]] == [
        "job_id",
        "user_id",
        "status",
        "limit",
        "offset",
    ]
    assert "422" in job["responses"] and "422" not in schedule["responses"]


def test_docs_is_swagger_ui_served_from_the_package(server: ThreadServer) -> None:
    from swagger_ui_bundle import swagger_ui_path

    page = requests.get(f"{server.url}/docs", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # nothing from a CDN
    referenced = re.findall(r'(?:src|href)="(/docs/[^"]+)"', page.text)
    assert "/docs/swagger-ui-bundle.js" in referenced and "/docs/swagger-ui.css" in referenced
    for url in referenced:
        answer = requests.get(server.url + url, timeout=5)
        assert answer.status_code == 200, url
        name = url.rsplit("/", 1)[1]
        if name != "swagger-initializer.js":
            assert answer.content == (Path(str(swagger_ui_path)) / name).read_bytes(), url
    initializer = requests.get(f"{server.url}/docs/swagger-initializer.js", timeout=5).text
    assert 'url: "/openapi.json"' in initializer
    check(send(server, "GET", "/docs/../setup.cfg"), 404, "error")
    check(send(server, "GET", "/docs/oauth2-redirect.html"), 404, "error")


def test_oversized_url_is_413_without_a_traceback(server: ThreadServer) -> None:
    response = send(server, "GET", "/api/job/" + "x" * 9000)
    assert response.status_code in (413, 414), response.text
    assert "Traceback" not in response.text
