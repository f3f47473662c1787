"""An open-loop HTTP load generator, run as its own process: requests sent at a fixed
rate whatever the server does with them, each timed from when it was due to be sent.

    python -m bench.open_loop PLAN.json

A closed-loop client waits for each answer before it sends again, so a slow server is
sent less and its latency looks bounded by the client count (Little's law). Here
request i is due at start + i / rate; it is written on an idle keep-alive connection
(a new one when none is idle, up to MAX_CONNECTIONS) as soon as it is due, and its
latency runs from the due time, so a server that falls behind shows it (no coordinated
omission). The generator checks itself: it reports how late it sent (send lag) and the
rate it achieved, so a generator that could not keep up is seen, not mistaken for the
server. asyncio on uvloop when installed, one process of its own (not the server's
cores' Python threads).

The plan (JSON): {"host", "port", "rate", "requests": [[method, path, body or null,
[[header, value], ...]], ...]}. The last stdout line is one JSON object: the offered
rate, requests sent, the achieved send rate and send lag p50/p99 (when the generator
took each request up, against its due time), how many waited for a free connection,
answers per second, every latency in seconds, errors and the first error.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: connections opened before the clock starts (more are opened as needed)
WARM_CONNECTIONS = 16
#: connections open at most (cronwell allows one client address 128 by default); a
#: request due while all are busy waits for one, and its latency, counted from when it
#: was due, shows the wait
MAX_CONNECTIONS = 100
#: seconds to wait for the last answers once everything is sent
DRAIN_TIMEOUT = 60.0
#: seconds between opening the warm connections and the first due time
LEAD_IN = 0.2


@dataclass(slots=True)
class Outcome:
    """What the generator measured."""

    rate: float
    sent: int = 0
    #: due time to the moment the generator took the request up, seconds: the
    #: generator's own lateness (a wait for a free connection, which a slow server
    #: causes, is not in it but in the latency)
    send_lags: list[float] = field(default_factory=list)
    #: requests that waited for a connection because all MAX_CONNECTIONS were busy
    waited: int = 0
    #: due time to the end of its answer, seconds, of each answered request
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    first_sent: float = 0.0
    last_sent: float = 0.0
    last_answer: float = 0.0
    start: float = 0.0

    def fail(self, message: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = message

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.send_lags)
        span = self.last_sent - self.first_sent
        answered = self.last_answer - self.start
        return {
            "rate": self.rate,
            "sent": self.sent,
            "send_rate": (self.sent - 1) / span if self.sent > 1 and span > 0 else None,
            "send_lag_p50_ms": _pick(lags, 0.50) * 1000 if lags else None,
            "send_lag_p99_ms": _pick(lags, 0.99) * 1000 if lags else None,
            "answer_rate": len(self.latencies) / answered if answered > 0 else None,
            "waited_for_connection": self.waited,
            "latencies": self.latencies,
            "errors": self.errors,
            "first_error": self.first_error,
        }


def _pick(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def encode(host: str, port: int, request: Sequence[Any]) -> bytes:
    """One HTTP/1.1 request's bytes, keep-alive."""
    method, path, body, headers = request
    payload = b"" if body is None else body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, data: bytes) -> tuple[int, bytes, bool]:
        """Send one request, read its answer: (status, body, connection still usable)."""
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length: int | None = None
        keep = status_line.startswith("HTTP/1.1")
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                keep = value.strip().lower() != "close"
            elif name == "transfer-encoding" and "chunked" in value.lower():
                raise ValueError("chunked answers are not read by this generator")
        if length is None:
            return status, await self.reader.read(), False
        return status, await self.reader.readexactly(length), keep

    def close(self) -> None:
        self.writer.close()


class Generator:
    def __init__(self, host: str, port: int, rate: float, requests: Sequence[bytes]) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.outcome = Outcome(rate)
        self.idle: deque[Connection] = deque()
        self.opened = 0
        self.freed = asyncio.Event()

    async def open(self) -> Connection:
        self.opened += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except BaseException:
            self.opened -= 1
            raise
        return Connection(reader, writer)

    async def connection(self) -> Connection:
        while not self.idle and self.opened >= MAX_CONNECTIONS:
            self.freed.clear()
            await self.freed.wait()
        return self.idle.popleft() if self.idle else await self.open()

    def release(self, conn: Connection, keep: bool) -> None:
        if keep:
            self.idle.append(conn)
        else:
            conn.close()
            self.opened -= 1
        self.freed.set()

    async def one(self, data: bytes, due: float) -> None:
        clock = time.perf_counter
        outcome = self.outcome
        conn: Connection | None = None
        taken = clock()
        outcome.send_lags.append(taken - due)
        outcome.first_sent = outcome.first_sent or taken
        outcome.last_sent = max(outcome.last_sent, taken)
        outcome.sent += 1
        try:
            if not self.idle and self.opened >= MAX_CONNECTIONS:
                outcome.waited += 1
            conn = await self.connection()
            status, body, keep = await conn.exchange(data)
            done = clock()
            self.release(conn, keep)
            conn = None
            outcome.latencies.append(done - due)
            outcome.last_answer = max(outcome.last_answer, done)
            if status != 200:
                outcome.fail(f"{status} {body[:200]!r}")
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            outcome.fail(f"{type(exc).__name__}: {exc}")
            if conn is not None:
                self.release(conn, False)

    async def run(self) -> Outcome:
        for _ in range(WARM_CONNECTIONS):
            self.idle.append(await self.open())
        interval = 1.0 / self.outcome.rate
        start = self.outcome.start = time.perf_counter() + LEAD_IN
        tasks = []
        for index, data in enumerate(self.requests):
            due = start + index * interval
            # a loop's timers may wake up to a millisecond early: never send before due
            while (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(self.one(data, due)))
        _, unfinished = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
        for task in unfinished:
            task.cancel()
            self.outcome.fail(f"no answer within {DRAIN_TIMEOUT:g} s of the last send")
        for conn in self.idle:
            conn.close()
        await asyncio.gather(
            *(conn.writer.wait_closed() for conn in self.idle), return_exceptions=True
        )
        return self.outcome


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_plan(plan: dict[str, Any]) -> dict[str, Any]:
    host, port = plan["host"], int(plan["port"])
    encoded = [encode(host, port, r) for r in plan["requests"]]
    loop = new_loop()
    try:
        outcome = loop.run_until_complete(Generator(host, port, float(plan["rate"]), encoded).run())
    finally:
        loop.close()
    return outcome.summary()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m bench.open_loop PLAN.json", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        plan = json.load(f)
    print(json.dumps(run_plan(plan)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
