"""Notifications end to end: a real cronwell service, a real HTTP server and the real
aiosmtpd SMTP server on loopback. A failing job notifies (webhook signed, retried with
backoff after a refusal; mail through the relay); a succeeding one does not unless
asked; every attempt is on the execution's `notifications` list."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.api_support import (
    BASH_ECHO,
    ThreadServer,
    free_port,
    make_settings,
    new_user,
    running_server,
    wait_for,
    write_script,
)
from tests.test_api_schedules import call, created, future, refused, update
from tests.test_jobs_email import Inbox, text

BASH_FAIL = '#!/bin/bash\necho "disk full" >&2\nexit 2\n'
SECRET = "s3cret-key"


class Hook:
    """A loopback HTTP server keeping every POST; answers 503 to the first `refuse`."""

    def __init__(self, refuse: int = 0) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.refuse = refuse
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook.lock:
                    hook.posts.append((dict(self.headers), body))
                    refused = len(hook.posts) <= hook.refuse
                self.send_response(503 if refused else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[ThreadServer]:
    tmp: Path = tmp_path_factory.mktemp("notify_api")
    settings = make_settings(
        tmp,
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,  # type: ignore[attr-defined]
        smtp_from="cronwell@example.org",
        extra={"notify_backoff": 0.05, "notify_attempts": 3, "notify_timeout": 3},
    )
    write_script(settings.script_roots[0], "ok.sh", BASH_ECHO)
    write_script(settings.script_roots[0], "fail.sh", BASH_FAIL)
    with running_server(settings) as live:
        yield live


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    return new_user(server)


def script_job(server: ThreadServer, job_id: str, script: str, notify: dict[str, Any]) -> None:
    body = {
        "job_id": job_id,
        "job_type": "bash",
        "script_path": str(server.app.ctx.settings.script_roots[0] / script),
        "run_date": future(days=1).isoformat(),
        "notify": notify,
    }
    response = call(server, "POST", "/api/schedule-job", body)
    assert response.status_code == 200, response.text


def run_and_wait(server: ThreadServer, job_id: str, attempts: int) -> dict[str, Any]:
    """Run the job now; the execution once `attempts` notifications are recorded."""
    response = call(server, "POST", f"/api/scheduler/jobs/{job_id}/run")
    assert response.status_code == 200, response.text
    execution_id = response.json()["execution_id"]

    def recorded() -> dict[str, Any] | None:
        data: dict[str, Any] = call(
            server, "GET", f"/api/scheduler/executions/{execution_id}"
        ).json()["data"]
        return data if len(data["notifications"]) >= attempts else None

    return wait_for(recorded, 15, f"{attempts} notification attempt(s) of {execution_id}")


def test_a_failing_job_notifies_by_signed_webhook_and_mail(
    server: ThreadServer, inbox: Inbox
) -> None:
    hook = Hook(refuse=1)  # the first POST is refused: the second attempt delivers
    try:
        notify = {
            "on": ["failed"],
            "webhook": hook.url,
            "email": "ops@example.com",
            "secret": SECRET,
        }
        script_job(server, "failing_notified", "fail.sh", notify)
        execution = run_and_wait(server, "failing_notified", 3)
        assert execution["status"] == "failed"
        webhook, retried, mail = execution["notifications"]
        assert webhook["target"] == f"webhook {hook.url}" and webhook["attempt"] == 1
        assert webhook["outcome"].startswith("failed: HTTP 503")
        assert retried["attempt"] == 2 and retried["outcome"] == "delivered (HTTP 200)"
        assert mail == {**mail, "target": "email ops@example.com", "attempt": 1}
        assert mail["outcome"] == "delivered (SMTP accepted)"
        # the webhook got the execution as JSON, signed with the secret
        headers, body = hook.posts[-1]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Cronwell-Signature"] == expected
        sent = json.loads(body)
        assert sent["event"] == "execution.failed" and sent["job_id"] == "failing_notified"
        assert sent["execution"]["id"] == execution["_id"]
        assert "disk full" in sent["execution"]["error"] or sent["execution"]["exit_code"] == 2
        # and the mail went through the relay
        rcpt, message = next(m for m in inbox.mails if execution["_id"] in text(m[1]))
        assert rcpt == ["ops@example.com"]
        assert (
            message["Subject"]
            == "cronwell: bash:"
            + str(server.app.ctx.settings.script_roots[0] / "fail.sh")
            + " failed"
        )
    finally:
        hook.close()


def test_a_succeeding_job_does_not_notify_unless_asked(server: ThreadServer) -> None:
    hook = Hook()
    try:
        script_job(server, "quiet_success", "ok.sh", {"on": ["failed"], "webhook": hook.url})
        failing = {"on": ["failed"], "webhook": hook.url}
        script_job(server, "loud_failure", "fail.sh", failing)  # the control: this one posts
        run_and_wait(server, "loud_failure", 1)
        quiet = call(server, "POST", "/api/scheduler/jobs/quiet_success/run").json()
        wait_for(
            lambda: (
                call(server, "GET", f"/api/scheduler/executions/{quiet['execution_id']}").json()[
                    "data"
                ]["status"]
                == "completed"
                or None
            ),
            15,
            "the quiet run to complete",
        )
        assert [b["job_id"] for b in hook.bodies()] == ["loud_failure"]
        # asked: completed is among the statuses
        assert (
            update(
                server, "quiet_success", notify={"on": ["completed"], "webhook": hook.url}
            ).status_code
            == 200
        )
        execution = run_and_wait(server, "quiet_success", 1)
        assert execution["notifications"][0]["outcome"] == "delivered (HTTP 200)"
        assert hook.bodies()[-1]["event"] == "execution.completed"
        assert "X-Cronwell-Signature" not in hook.posts[-1][0]  # no secret, no signature
    finally:
        hook.close()


def test_an_unreachable_webhook_is_retried_then_given_up(server: ThreadServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    script_job(server, "unheard", "fail.sh", {"webhook": dead})  # on: failed, timeout
    execution = run_and_wait(server, "unheard", 3)
    assert [n["attempt"] for n in execution["notifications"]] == [1, 2, 3]
    assert all(n["outcome"].startswith("failed: POST") for n in execution["notifications"])


def test_notify_is_validated_and_never_shows_the_secret(server: ThreadServer, user_id: str) -> None:
    data = created(
        server,
        user_id,
        cron="@daily",
        notify={"on": ["failed", "missed"], "webhook": "https://example.org/h", "secret": "k"},
    )
    assert data["notify"] == {
        "on": ["failed", "missed"],
        "webhook": "https://example.org/h",
        "has_secret": True,
    }
    job_id = data["_id"]
    for notify, message in (
        ({"on": ["failed"]}, "notify needs a webhook, an email, or both"),
        ({"on": ["exploded"], "webhook": "http://x.org"}, "notify.on: exploded is not a status"),
        ({"webhook": "ftp://x.org/f"}, "notify.webhook must be an http or https URL"),
        ({"email": "not-an-address"}, "notify.email is not a valid email address"),
        ({"webhook": "http://x.org", "cc": "me"}, "notify has unknown key(s) cc"),
    ):
        assert refused(update(server, job_id, notify=notify), 422).startswith(message)
    removed = update(server, job_id, notify=None)
    assert removed.status_code == 200 and removed.json()["data"]["notify"] is None
    bad = {"job_id": "bad_notify", "job_type": "bash", "script_path": "/x", "notify": {"on": []}}
    assert refused(
        call(server, "POST", "/api/schedule-job", {**bad, "run_date": future(days=1).isoformat()}),
        400,
        key="error",
    ).startswith("notify.on must be a non-empty list")
