"""bench.api's open-loop grid and its one-client key A/B: what runs against a server
besides the closed-loop phases.

Open loop: for each rate, each endpoint, a plan of `rate x seconds` requests is written
to a file and sent by `bench.open_loop` in a process of its own (so the generator does
not share the measuring process's GIL), which reports what it achieved.

Key A/B: an open and a keyed cronwell run side by side, and one client sends blocks of
requests to each in turn (ALTERNATIONS times, the first server swapping each time), so
both see the same moments of a noisy machine.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api_servers import Server
from bench.common import LatencySummary, run_child_json
from bench.http_load import PhaseResult, Request, run_phase

RATES = (100, 200, 400)
OPEN_ENDPOINTS = ("get-job", "schedule-job")
#: how long each open-loop step sends, in seconds
FULL_SECONDS = 5.0
QUICK_SECONDS = 2.0
#: seconds the generator child may take beyond its sending time (its drain included)
CHILD_SLACK = 120.0
ALTERNATIONS = 8


@dataclass(frozen=True, slots=True)
class OpenRow:
    """One open-loop step: a system, an endpoint, an offered rate, what was measured."""

    system: str
    endpoint: str
    rate: int
    sent: int
    send_rate: float | None
    send_lag_p99_ms: float | None
    answer_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    first_error: str
    #: requests that waited for a free connection (the generator's cap was reached)
    waited: int = 0

    @classmethod
    def of(cls, system: str, endpoint: str, rate: int, measured: dict[str, Any]) -> OpenRow:
        latencies = measured["latencies"]
        summary = LatencySummary.of_seconds(latencies) if latencies else None
        return cls(
            system,
            endpoint,
            rate,
            measured["sent"],
            measured["send_rate"],
            measured["send_lag_p99_ms"],
            measured["answer_rate"],
            summary.p50_ms if summary else None,
            summary.p99_ms if summary else None,
            measured["errors"],
            measured["first_error"],
            measured.get("waited_for_connection", 0),
        )

    @property
    def kept_up(self) -> bool:
        """Answered at 95% of the offered rate or better, without errors."""
        return bool(self.answer_rate and self.answer_rate >= 0.95 * self.rate and not self.errors)


def wire(request: Request) -> list[Any]:
    """A request as the generator's plan holds it."""
    body = None if request.body is None else request.body.decode()
    return [request.method, request.path, body, [list(h) for h in request.headers]]


def open_loop(
    server: Server, requests: Sequence[Request], rate: int, seconds: float
) -> dict[str, Any]:
    """Send `requests` (already signed) at `rate` per second from a child process."""
    plan = {
        "host": server.host,
        "port": server.port,
        "rate": rate,
        "requests": [wire(r) for r in requests],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan, f)
        path = Path(f.name)
    try:
        return run_child_json("bench.open_loop", [str(path)], seconds + CHILD_SLACK)
    finally:
        path.unlink(missing_ok=True)


def grid(
    servers: Sequence[Server],
    plans: Callable[[Server, str, int, int], list[Request]],
    seconds: float,
    log: Callable[[str], None],
) -> list[OpenRow]:
    """Every (rate, endpoint) step against each server, the servers taking turns step by
    step (the first one swapping each step); `plans(server, endpoint, rate, count)` gives
    a step's unsigned requests."""
    rows = []
    step = 0
    for rate in RATES:
        for endpoint in OPEN_ENDPOINTS:
            count = int(rate * seconds)
            order = servers if step % 2 == 0 else list(reversed(servers))
            step += 1
            for server in order:
                requests = [server.signed(r) for r in plans(server, endpoint, rate, count)]
                log(f"{server.name}: open loop, {endpoint} at {rate}/s for {seconds:g} s")
                measured = open_loop(server, requests, rate, seconds)
                rows.append(OpenRow.of(server.name, endpoint, rate, measured))
    return rows


@dataclass(slots=True)
class Alternated:
    """The key A/B of one endpoint: per server every latency and the summed wall time
    of its blocks, and per alternation each server's p50 (the pairs the cost is read
    from: two blocks sent one right after the other)."""

    merged: dict[str, PhaseResult]
    block_p50s: list[dict[str, float]]


def alternate(
    servers: Sequence[Server],
    plan: Callable[[Server, int], list[Request]],
    alternations: int = ALTERNATIONS,
) -> Alternated:
    """One client, request after request, a block `plan(server, block)` to each server in
    turn, the order swapped each alternation."""
    found = Alternated({s.name: PhaseResult() for s in servers}, [])
    for block in range(alternations):
        order = servers if block % 2 == 0 else list(reversed(servers))
        p50s = {}
        for server in order:
            result = run_phase(server.host, server.port, [plan(server, block)])
            into = found.merged[server.name]
            into.latencies.extend(result.latencies)
            into.errors += result.errors
            into.first_error = into.first_error or result.first_error
            into.finished += result.finished - result.started
            p50s[server.name] = LatencySummary.of_seconds(result.latencies).p50_ms
        found.block_p50s.append(p50s)
    return found
