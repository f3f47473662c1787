"""WebhookJob and ServerHealthCheckJob against real peers on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api.config import Settings
from jobs.base import JobError
from jobs.server import ServerHealthCheckJob
from jobs.web import EXCERPT_BYTES
from jobs.webhook import WebhookJob
from stores.memory import MemoryStore
from stores.records import Server
from tests.jobs_support import START, free_port, make_context, run_job

#: path -> (status, body) the peer answers with
ROUTES: dict[str, tuple[int, bytes]] = {
    "/ok": (200, b'{"received": true}'),
    "/created": (201, b""),
    "/fail": (500, b"internal boom"),
    "/big": (200, b"x" * (EXCERPT_BYTES + 1000)),
    "/moved": (302, b"see elsewhere"),
}


@dataclass
class Peer:
    base: str
    received: list[dict[str, Any]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    peer: Peer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.peer.received.append(
            {
                "method": self.command,
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": self.rfile.read(length) if length else b"",
            }
        )
        status, body = ROUTES.get(self.path, (404, b"no such route"))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[Peer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    result = Peer(base=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = type("BoundHandler", (Handler,), {"peer": result})
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield result
    server.shutdown()
    server.server_close()


QUICK = Settings(extra={"webhook_timeout": 2, "health_check_timeout": 2})


# -- WebhookJob -------------------------------------------------------------------------
def test_webhook_posts_kwargs_as_json(peer: Peer, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{peer.base}/ok"
    result = run_job(WebhookJob, make_context(MemoryStore(), QUICK), url, event="backup", count=3)
    [request] = peer.received
    assert request["method"] == "POST" and request["path"] == "/ok"
    assert request["content_type"] == "application/json"
    assert json.loads(request["body"]) == {"event": "backup", "count": 3}
    assert result["status_code"] == 200
    assert result["response_excerpt"] == '{"received": true}'
    assert result["latency_ms"] >= 0 and result["truncated"] is False
    assert f"POST {url} -> HTTP 200 in" in capsys.readouterr().out


def test_webhook_non_2xx_fails_after_printing_the_excerpt(
    peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(JobError, match=f"Webhook {peer.base}/fail answered HTTP 500"):
        run_job(WebhookJob, make_context(MemoryStore(), QUICK), f"{peer.base}/fail", a=1)
    assert "Response: internal boom" in capsys.readouterr().out
    with pytest.raises(JobError, match="answered HTTP 302"):  # redirects are not followed
        run_job(WebhookJob, make_context(MemoryStore(), QUICK), f"{peer.base}/moved")
    assert [r["path"] for r in peer.received] == ["/fail", "/moved"]


def test_webhook_keeps_at_most_2kb_of_the_answer(peer: Peer) -> None:
    result = run_job(WebhookJob, make_context(MemoryStore(), QUICK), f"{peer.base}/big")
    assert len(result["response_excerpt"]) == EXCERPT_BYTES and result["truncated"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), r"WebhookJob needs pub_args\[0\]: url \(missing\)"),
        (("",), "url must be a non-empty string"),
        (("ftp://example.com/hook",), "url must use http or https, not ftp"),
        (("file:///etc/passwd",), "url must use http or https, not file"),
        (("example.com/hook",), "url must use http or https, not no scheme"),
        (("http://",), "url has no host"),
        (("http://127.0.0.1:99999/x",), "url is malformed"),
    ],
)
def test_webhook_refuses_bad_urls(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(JobError, match=message):
        run_job(WebhookJob, make_context(MemoryStore(), QUICK), *args)


def test_webhook_to_a_closed_port_fails_clearly() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(JobError, match=f"POST {url} failed: .*refused"):
        run_job(WebhookJob, make_context(MemoryStore(), QUICK), url)


# -- ServerHealthCheckJob ---------------------------------------------------------------
@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port that accepts connections (the backlog does the accepting)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def stored_server(store: MemoryStore, port: int, instance_url: str = "") -> Server:
    server = Server(
        id="srv1",
        user_id="u1",
        name="db-1",
        hostname="127.0.0.1",
        port=port,
        instance_url=instance_url,
        password_encrypted="token",
    )
    store.add_server(server)
    return server


def check(store: MemoryStore, server_id: str = "srv1") -> dict[str, Any]:
    result: dict[str, Any] = run_job(ServerHealthCheckJob, make_context(store, QUICK), server_id)
    return result


def test_health_of_a_listening_server_is_running(
    listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    store = MemoryStore()
    stored_server(store, listener)
    result = check(store)
    assert result["status"] == "running"
    assert result["tcp"]["ok"] is True and result["tcp"]["latency_ms"] >= 0
    assert "http" not in result
    saved = store.get_server("srv1")
    assert saved.status == "running"
    assert saved.last_check_at == START
    assert saved.last_check["tcp"]["target"] == f"127.0.0.1:{listener}"
    assert saved.password_encrypted == "token"  # the rest of the record is untouched
    assert f"tcp 127.0.0.1:{listener}: ok in" in capsys.readouterr().out


def test_health_of_a_closed_port_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    store = MemoryStore()
    stored_server(store, free_port())
    result = check(store)
    assert result["status"] == "unreachable" and result["tcp"]["ok"] is False
    assert "refused" in result["tcp"]["error"].lower()
    assert store.get_server("srv1").status == "unreachable"
    assert "FAILED" in capsys.readouterr().out


def test_health_with_an_instance_url(listener: int, peer: Peer) -> None:
    store = MemoryStore()
    server = stored_server(store, listener, f"{peer.base}/ok")
    result = check(store)
    assert result["status"] == "running"
    assert result["http"] == {
        "ok": True,
        "url": f"{peer.base}/ok",
        "status_code": 200,
        "latency_ms": result["http"]["latency_ms"],
    }
    assert peer.received[-1]["method"] == "GET"

    server.instance_url = f"{peer.base}/fail"
    store.update_server(server)
    result = check(store)
    assert result["status"] == "degraded" and result["http"]["status_code"] == 500
    assert store.get_server("srv1").last_check["http"]["ok"] is False


def test_health_check_of_an_unknown_server_fails_clearly() -> None:
    with pytest.raises(JobError, match="Server not found: nope"):
        check(MemoryStore(), "nope")
    with pytest.raises(JobError, match=r"needs pub_args\[0\]: server_id"):
        run_job(ServerHealthCheckJob, make_context(MemoryStore(), QUICK))
