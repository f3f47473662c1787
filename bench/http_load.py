"""A closed-loop HTTP load generator: N client threads, each on its own keep-alive
`http.client` connection, each sending a fixed list of requests back to back.

`http.client` rather than requests: less client work per request, so the client (one
process, one GIL) caps the measured server later; both systems get the same client.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

JSON_HEADERS = {"Content-Type": "application/json"}
TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    #: extra headers (an API key), sent beside the JSON content type
    headers: tuple[tuple[str, str], ...] = ()

    def all_headers(self) -> dict[str, str]:
        sent = dict(JSON_HEADERS) if self.body else {}
        sent.update(self.headers)
        return sent


def post_json(path: str, payload: dict[str, Any]) -> Request:
    return Request("POST", path, json.dumps(payload).encode())


@dataclass(slots=True)
class PhaseResult:
    """What one phase measured: every request's latency, the errors, the wall time."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    started: float = 0.0
    finished: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def requests_per_s(self) -> float:
        return self.requests / (self.finished - self.started)


class _Client:
    """One connection and the requests it sends; reconnects after a transport error."""

    def __init__(self, host: str, port: int, requests: Sequence[Request]) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error = ""
        self.conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)

    def _fail(self, message: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = message

    def run(self, barrier: threading.Barrier) -> None:
        barrier.wait()
        clock = time.perf_counter
        prepared = [(req, req.all_headers()) for req in self.requests]
        for req, headers in prepared:
            began = clock()
            try:
                self.conn.request(req.method, req.path, body=req.body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.status != 200:
                    self._fail(f"{req.method} {req.path}: {response.status} {data[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                self._fail(f"{req.method} {req.path}: {type(exc).__name__}: {exc}")
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
            self.latencies.append(clock() - began)
        self.conn.close()


def run_phase(host: str, port: int, plans: Sequence[Sequence[Request]]) -> PhaseResult:
    """Send each plan (one per client) concurrently; all clients start together.

    The phase's wall time runs from the moment every client is released to the moment
    the last one finishes, so requests/s is total requests over that span.
    """
    return run_phase_across([(host, port, plan) for plan in plans])


def run_phase_across(targets: Sequence[tuple[str, int, Sequence[Request]]]) -> PhaseResult:
    """`run_phase` with each client on a server of its own: (host, port, plan) each, as
    for several nodes behind no balancer."""
    result = PhaseResult()
    clients = [_Client(host, port, plan) for host, port, plan in targets]

    def released() -> None:
        result.started = time.perf_counter()

    barrier = threading.Barrier(len(clients), action=released)
    threads = [threading.Thread(target=c.run, args=(barrier,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.finished = time.perf_counter()
    for client in clients:
        result.latencies.extend(client.latencies)
        result.errors += client.errors
        result.first_error = result.first_error or client.first_error
    return result


def call(host: str, port: int, req: Request) -> tuple[int, Any]:
    """One untimed request (seeding, canaries, health); (status, parsed JSON or None)."""
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request(req.method, req.path, body=req.body, headers=req.all_headers())
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, None
