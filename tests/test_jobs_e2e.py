"""Every built-in job class end to end: created on `/api/scheduler/jobs` of a real
server on loopback (SQLite file), run with `/run`, its execution read back over HTTP.

The jobs talk to real local peers: an SMTP server (aiosmtpd), an HTTP server for the
webhook, a listening TCP socket for the health check, and real files for backup,
report and the custom script.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests
from aiosmtpd.controller import Controller

from jobs.registry import BUILTIN_JOBS
from tests.api_support import (
    ThreadServer,
    free_port,
    make_settings,
    running_server,
    wait_for,
    write_script,
)


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


class Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hooks.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"hook accepted")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, Any]]:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    try:
        yield {
            "inbox": inbox,
            "smtp_port": smtp.port,
            "hook_url": f"http://127.0.0.1:{http.server_address[1]}/hook",
            "tcp_port": tcp.getsockname()[1],
        }
    finally:
        smtp.stop()
        http.shutdown()
        tcp.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, peers: dict[str, Any]
) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("jobs-e2e")
    settings = make_settings(tmp, smtp_host="127.0.0.1", smtp_port=peers["smtp_port"])
    write_script(settings.script_roots[0], "tidy.sh", '#!/bin/bash\necho "tidy $*"\n')
    with running_server(settings) as running:
        yield running


def post(server: ThreadServer, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = requests.post(f"{server.url}{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def run_class(
    server: ThreadServer, user_id: str, class_string: str, args: list[Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    job_id = post(
        server,
        "/api/scheduler/jobs",
        {
            "user_id": user_id,
            "job_class_string": class_string,
            "name": f"e2e {class_string}",
            "minute": "0",
            "hour": "3",
            "pub_args": args,
            "pub_kwargs": kwargs,
        },
    )["job_id"]
    execution_id = post(server, f"/api/scheduler/jobs/{job_id}/run")["execution_id"]

    def finished() -> dict[str, Any] | None:
        data: dict[str, Any] = requests.get(
            f"{server.url}/api/scheduler/executions/{execution_id}", timeout=5
        ).json()["data"]
        return data if data["status"] not in ("queued", "running", "scheduled") else None

    return wait_for(finished, 30, f"{class_string} to finish")


def test_every_builtin_class_runs_through_the_api(
    server: ThreadServer, peers: dict[str, Any]
) -> None:
    user_id = post(
        server, "/api/users/", {"name": "Ops", "email": "ops@example.com", "role": "admin"}
    )["user_id"]
    server_id = post(
        server,
        "/api/servers/create",
        {
            "user_id": user_id,
            "name": "loopback",
            "hostname": "127.0.0.1",
            "port": peers["tcp_port"],
            "username": "admin",
            "password": "hunter2",
        },
    )["server_id"]
    cases: dict[str, tuple[list[Any], dict[str, Any], str]] = {
        "jobs.echo.EchoJob": (["arg1"], {"key": "value"}, "Args: ['arg1']"),
        "jobs.server.ServerHealthCheckJob": ([server_id], {}, "running"),
        "jobs.backup.DataBackupJob": ([], {"collections": ["users", "servers"]}, ".json"),
        "jobs.email.EmailNotificationJob": (
            ["someone@example.com"],
            {"subject": "e2e", "message": "hello over smtp"},
            "someone@example.com",
        ),
        "jobs.cleanup.DataCleanupJob": ([], {"days_old": 30}, "executions"),
        "jobs.metrics.SystemMetricsJob": ([], {}, "memory"),
        "jobs.report.ReportGenerationJob": ([], {"report_type": "daily"}, "daily"),
        "jobs.webhook.WebhookJob": ([peers["hook_url"]], {"event": "e2e"}, "200"),
        "jobs.maintenance.MaintenanceJob": ([], {"tasks": ["optimize_queries"]}, "optimize"),
        "jobs.custom.CustomScriptJob": (["tidy"], {"level": "deep"}, "tidy --level deep"),
    }
    assert set(cases) == set(BUILTIN_JOBS)
    for class_string, (args, kwargs, expected) in cases.items():
        execution = run_class(server, user_id, class_string, args, kwargs)
        assert execution["status"] == "completed", (class_string, execution["error"])
        assert expected.lower() in execution["output"].lower(), (class_string, execution["output"])
        assert execution["return_value"] is not None, class_string
        assert "hunter2" not in json.dumps(execution), class_string

    (recipients, mail) = peers["inbox"].mails[-1]
    assert recipients == ["someone@example.com"] and b"hello over smtp" in mail
    assert Hooks.received[-1] == {"event": "e2e"}
    checked = requests.get(f"{server.url}/api/servers/{server_id}", timeout=5).json()["data"]
    assert checked["status"] == "running" and "password" not in checked
