"""Slow and greedy clients, with raw sockets against a real server on loopback: the
whole-request deadline (head and body), the cap on connections per client address,
and a 413 that a client writing its whole body first can still read."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.protocol import LINGER_SECONDS
from tests.api_support import ServeProcess, ThreadServer, make_settings, running_server, wait_for

DEADLINE = 1.0
CAP = 3
MAX_BODY = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("slow_clients")
    settings = make_settings(
        tmp, request_deadline=DEADLINE, max_client_connections=CAP, max_body=MAX_BODY
    )
    with running_server(settings) as live:
        yield live


def connect(server: ThreadServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length, leaving the connection open."""
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def status_and_body(raw: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    found: dict[str, str] = json.loads(body)
    return int(head.split()[1]), found


@pytest.mark.parametrize(
    "request_bytes",
    [
        # the head never ends: every byte arrives well within Sanic's per-gap timeout
        b"GET /api/scheduler/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200,
        # the head is quick, the body trickles
        b"POST /api/users/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300\r\n\r\n" + b" " * 300,
    ],
    ids=["head", "body"],
)
def test_a_trickled_request_is_cut_off_at_the_deadline(
    server: ThreadServer, request_bytes: bytes
) -> None:
    with connect(server) as sock:
        if request_bytes.startswith(b"POST"):
            head_end = request_bytes.index(b"\r\n\r\n") + 4
            sock.sendall(request_bytes[:head_end])
            request_bytes = request_bytes[head_end:]
        sock.settimeout(0.2)
        answer = b""
        started = time.monotonic()
        # one byte every 0.2 s: 5 bytes a second, forever, were it not cut off
        for byte in request_bytes:
            try:
                sock.sendall(bytes([byte]))
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if answer:
                break
        took = time.monotonic() - started
        answer += read_until_closed(sock)
    status, body = status_and_body(answer)
    assert status == 408, answer
    assert "within 1 s" in next(iter(body.values()))
    assert DEADLINE - 0.2 < took < DEADLINE + 1.0


def test_a_keep_alive_connection_outlives_the_deadline(server: ThreadServer) -> None:
    # the deadline is per request: a connection serving quick requests over a longer
    # time than the deadline is never cut
    with connect(server) as sock:
        started = time.monotonic()
        for _ in range(4):
            sock.sendall(b"GET /api/scheduler/health HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = read_response(sock)
            assert status == 200
            time.sleep(DEADLINE / 2)
        assert time.monotonic() - started > 1.5 * DEADLINE


def test_a_request_whose_bytes_arrive_in_time_is_served(server: ThreadServer) -> None:
    with connect(server) as sock:
        for part in (b"GET /api/scheduler/health HT", b"TP/1.1\r\nHost: x\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(DEADLINE / 4)
        status, _, body = read_response(sock)
    assert status == 200 and json.loads(body)["status"] == "healthy"


def test_connections_per_client_address_are_capped(server: ThreadServer) -> None:
    held = [connect(server) for _ in range(CAP)]
    try:
        for sock in held:  # each one served, so the server has counted it
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
        with connect(server) as extra:
            answer = read_until_closed(extra)
        status, body = status_and_body(answer)
        assert status == 429 and b"\r\nretry-after: 1\r\n" in answer.lower()
        assert body == {"error": f"Too many open connections from this address (at most {CAP})"}
        held.pop().close()

        def served() -> bool:
            with connect(server) as again:
                again.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return read_until_closed(again).startswith(b"HTTP/1.1 200")

        wait_for(served, 5, "a slot to free once a held connection closed")
    finally:
        for sock in held:
            sock.close()


def test_a_413_reaches_a_client_that_writes_its_whole_body_first(server: ThreadServer) -> None:
    # urllib sends the whole body before it reads: without the half-close and drain
    # it gets a connection reset instead of the answer
    big = b'{"name": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    request = urllib.request.Request(
        f"{server.url}/api/users/", data=big, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 413
    assert json.loads(refused.value.read()) == {
        "detail": f"Request body too large (limit {MAX_BODY} bytes)"
    }


def test_a_413_on_a_raw_socket_is_followed_by_a_clean_close(server: ThreadServer) -> None:
    body = b"y" * (2 * 1024 * 1024)
    head = (
        "POST /api/schedule-job HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(head + body)
        answer = read_until_closed(sock, timeout=LINGER_SECONDS + 3)
    status, found = status_and_body(answer)
    assert (status, found) == (413, {"error": f"Request body too large (limit {MAX_BODY} bytes)"})
    assert time.monotonic() - started < LINGER_SECONDS + 2


def test_no_deadline_and_no_cap_when_set_to_zero(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, request_deadline=0.0, max_client_connections=0)
    with running_server(settings) as live:
        socks = [socket.create_connection(("127.0.0.1", live.port), timeout=5) for _ in range(5)]
        try:
            socks[0].sendall(b"GET /api/health HT")
            time.sleep(0.3)
            socks[0].sendall(b"TP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(socks[0])[0] == 200
            for sock in socks[1:]:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(sock)[0] == 200
        finally:
            for sock in socks:
                sock.close()


def test_cronwell_serve_runs_the_guarded_protocol(tmp_path: Path) -> None:
    # the real entry point (uvloop, Sanic's touch-up, settings from the environment)
    env = {
        "CRONWELL_DATA_DIR": str(tmp_path / "data"),
        "CRONWELL_REQUEST_DEADLINE": "1",
        "CRONWELL_MAX_CLIENT_CONNECTIONS": "2",
    }
    args = ["--store", f"sqlite:///{tmp_path / 'c.db'}"]
    serve = ServeProcess(args, tmp_path / "serve.log", env=env, cwd=tmp_path).wait_healthy()
    try:
        with socket.create_connection(("127.0.0.1", serve.port), timeout=5) as slow:
            slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            for _ in range(20):  # a header line every 0.15 s, never the blank line
                try:
                    slow.sendall(b"X-Slow: a\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    break
                time.sleep(0.15)
                if time.monotonic() - started > 1.5:
                    break
            answer = read_until_closed(slow)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        held = [socket.create_connection(("127.0.0.1", serve.port), timeout=5) for _ in range(2)]
        try:
            for sock in held:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(sock)[0] == 200
            with socket.create_connection(("127.0.0.1", serve.port), timeout=5) as extra:
                assert read_until_closed(extra).startswith(b"HTTP/1.1 429")
        finally:
            for sock in held:
                sock.close()
    finally:
        assert serve.terminate() == 0
    assert "Traceback" not in serve.output()


def test_the_deadline_counts_from_each_request_s_own_first_byte(server: ThreadServer) -> None:
    # the connection's timer was armed for the first request; the second, trickled
    # after a pause, gets its own full deadline, neither less nor unlimited
    with connect(server) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
        time.sleep(DEADLINE * 0.6)
        sock.sendall(b"GET /api/health HTTP/1.1\r\n")
        started = time.monotonic()
        sock.settimeout(0.15)
        answer = b""
        while not answer and time.monotonic() - started < DEADLINE + 2:
            try:
                sock.sendall(b"X-Slow: a\r\n")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert DEADLINE - 0.15 < took < DEADLINE + 0.6, took
