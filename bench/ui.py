"""Dashboard benchmark: the jobs page (`GET /ui/`) of a service holding 1,000 jobs.

    python -m bench.ui [--quick]

Starts `cronwell serve` on a SQLite file (the production code path, a child process),
stores 1,000 jobs through the API (700 job-class cron jobs of 10 users, 300 bash
one-off jobs), runs some of them so the page has last runs to look up, then asks for
the page over one keep-alive connection, `runs` times in each of two scenarios:

- `some-ran`: 200 jobs have run once (every last run is among the newest executions);
- `all-ran`: every job has run, and 2,000 more runs of ten jobs push most of the
  others' last runs out of the one-query window, so they are looked up one by one;
- `signed-in`: the same, after an admin key exists (the service is closed) and the
  client signed in through the form: every request checks its session's key in the
  store, as an API request checks its key.

Measured per request: the server's own time for the whole handler (store reads,
rendering, compression), from its `Server-Timing: total` header; the client's time
to the last byte; bytes over the wire with gzip (what a browser receives) and without.
The peer, in the same run and alternated request by request with the page: the JSON
API's own list of the same jobs (`GET /api/scheduler/jobs`, client time; gzip does not
apply to it). The first request of a process (templates compiled) is reported apart.
Targets: server time under 300 ms and under 500 KB over the wire. Last line:
`{"bench": "ui", "results": [{"scenario", "runs", "server_p50_ms", "server_p99_ms",
"server_max_ms", "client_p50_ms", "api_list_p50_ms", "page_over_api", "gzip_bytes",
"raw_bytes", "first_ms"}]}`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api_servers import Server, cronwell_server
from bench.common import fmt, json_line, percentile, render_table

JOBS = 1000
CLASS_JOBS = 700
USERS = 10
FULL_RUNS = 30
QUICK_RUNS = 8
SERVER_MS_TARGET = 300.0
BYTES_TARGET = 500 * 1024
_TOTAL = re.compile(r"total;dur=([0-9.]+)")


class Client:
    """One keep-alive connection to the service; sends `cookie` (a signed-in page
    session) or `key` when set."""

    def __init__(self, server: Server) -> None:
        self.connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
        self.cookie: str | None = None
        self.key: str | None = None

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        data = None if body is None else json.dumps(body).encode()
        sent = dict(headers or {})
        if data is not None:
            sent["Content-Type"] = "application/json"
        if self.cookie is not None:
            sent.setdefault("Cookie", self.cookie)
        if self.key is not None and "Cookie" not in sent:
            sent["X-API-Key"] = self.key
        self.connection.request(method, path, body=data, headers=sent)
        response = self.connection.getresponse()
        payload = response.read()
        return response.status, payload, response

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, payload, _ = self.send(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} answered {status}: {payload[:300]!r}")
        return json.loads(payload)


def seed(client: Client, script: Path) -> list[str]:
    users = [
        client.json("POST", "/api/users/", {"name": f"User {n}", "email": f"u{n}@example.com"})[
            "user_id"
        ]
        for n in range(USERS)
    ]
    ids = []
    for n in range(CLASS_JOBS):
        body = {
            "user_id": users[n % USERS],
            "job_class_string": "jobs.echo.EchoJob",
            "name": f"Echo job number {n}",
            "description": "bench job",
            "minute": str(n % 60),
            "hour": "*/2" if n % 3 == 0 else str(n % 24),
            "day_of_week": "mon-fri" if n % 2 else "*",
            "pub_args": ["bench", n],
        }
        ids.append(client.json("POST", "/api/scheduler/jobs", body)["job_id"])
    for n in range(JOBS - CLASS_JOBS):
        job_id = f"bench_script_{n}"
        body = {
            "job_id": job_id,
            "job_type": "bash",
            "script_path": str(script),
            "run_date": "2035-06-01T12:00:00",
            "args": [str(n)],
        }
        client.json("POST", "/api/schedule-job", body)
        ids.append(job_id)
    return ids


def run_now(client: Client, job_ids: Sequence[str]) -> None:
    for job_id in job_ids:
        client.json("POST", f"/api/scheduler/jobs/{job_id}/run")


def wait_idle(client: Client, expected: int, timeout: float = 300.0) -> None:
    """Until every execution has finished (the page then reads a still store)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = client.json("GET", "/api/scheduler/stats")["stats"]
        by_status = stats["executions_by_status"]
        active = by_status["queued"] + by_status["running"] + by_status["scheduled"]
        if stats["total_executions"] >= expected and active == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("executions did not finish in time")


@dataclass(slots=True)
class Sample:
    server_ms: float
    client_ms: float
    wire_bytes: int


def fetch_page(client: Client, gzip: bool) -> Sample:
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    started = time.perf_counter()
    status, payload, response = client.send("GET", "/ui/", headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        raise RuntimeError(f"/ui/ answered {status}")
    timing = _TOTAL.search(response.getheader("Server-Timing") or "")
    if timing is None:
        raise RuntimeError("no Server-Timing total on /ui/")
    if gzip and response.getheader("Content-Encoding") != "gzip":
        raise RuntimeError("the page was not compressed")
    return Sample(float(timing.group(1)), elapsed, len(payload))


def fetch_api_list(client: Client) -> float:
    """Client milliseconds of the JSON API's list of the same jobs (the peer)."""
    started = time.perf_counter()
    status, payload, _ = client.send("GET", "/api/scheduler/jobs")
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200 or json.loads(payload)["total"] != JOBS:
        raise RuntimeError(f"/api/scheduler/jobs answered {status}")
    return elapsed


_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_SET_COOKIE = re.compile(r"^([a-z_]+)=([^;]*)")


def sign_in(client: Client, key: str) -> None:
    """Sign the client in through the form as a browser would: the form's token and
    its cookie, then the session cookie."""
    client.cookie = None
    status, payload, response = client.send("GET", "/ui/sign-in")
    found = _FORM_TOKEN.search(payload.decode())
    pre = _SET_COOKIE.match(response.getheader("Set-Cookie") or "")
    if status != 200 or found is None or pre is None:
        raise RuntimeError(f"no sign-in form ({status})")
    body = f"key={key}&csrf_token={found.group(1)}&next=/ui/".encode()
    client.connection.request(
        "POST",
        "/ui/sign-in",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"{pre.group(1)}={pre.group(2)}",
        },
    )
    answer = client.connection.getresponse()
    answer.read()
    cookies = [_SET_COOKIE.match(v) for k, v in answer.getheaders() if k.lower() == "set-cookie"]
    session = [m for m in cookies if m is not None and m.group(1) == "cronwell_session"]
    if answer.status != 303 or not session:
        raise RuntimeError(f"sign-in answered {answer.status}")
    client.cookie = f"cronwell_session={session[0].group(2)}"


def check_rows(client: Client) -> None:
    """The page really lists every job (guards the numbers against a broken page)."""
    status, payload, _ = client.send("GET", "/ui/")
    text = payload.decode()
    shown = re.search(r"Showing (\d+) to (\d+) of (\d+) jobs", text)
    if status != 200 or shown is None or shown.groups() != ("1", str(JOBS), str(JOBS)):
        raise RuntimeError(f"the jobs page does not list {JOBS} jobs")


def measure(client: Client, scenario: str, runs: int, first_ms: float | None) -> dict[str, Any]:
    check_rows(client)
    zipped: list[Sample] = []
    peer: list[float] = []
    for n in range(runs):  # page and peer alternated, the one first swapping each time
        if n % 2:
            peer.append(fetch_api_list(client))
            zipped.append(fetch_page(client, gzip=True))
        else:
            zipped.append(fetch_page(client, gzip=True))
            peer.append(fetch_api_list(client))
    raw = fetch_page(client, gzip=False)
    server = [s.server_ms for s in zipped]
    client_p50 = percentile([s.client_ms for s in zipped], 50)
    api_p50 = percentile(peer, 50)
    return {
        "scenario": scenario,
        "runs": runs,
        "server_p50_ms": round(percentile(server, 50), 1),
        "server_p99_ms": round(percentile(server, 99), 1),
        "server_max_ms": round(max(server), 1),
        "client_p50_ms": round(client_p50, 1),
        "api_list_p50_ms": round(api_p50, 1),
        "page_over_api": round(client_p50 / api_p50, 2),
        "gzip_bytes": zipped[-1].wire_bytes,
        "raw_bytes": raw.wire_bytes,
        "first_ms": first_ms,
    }


def table(results: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            r["scenario"],
            str(r["runs"]),
            fmt(r["server_p50_ms"], 1),
            fmt(r["server_p99_ms"], 1),
            fmt(r["server_max_ms"], 1),
            fmt(r["client_p50_ms"], 1),
            fmt(r["api_list_p50_ms"], 1),
            f"{r['page_over_api']:.2f}",
            f"{r['gzip_bytes'] / 1024:.0f}",
            f"{r['raw_bytes'] / 1024:.0f}",
            fmt(r["first_ms"], 1),
        ]
        for r in results
    ]
    headers = [
        "scenario",
        "runs",
        "server p50 ms",
        "p99",
        "max",
        "client p50 ms",
        "API list p50 ms",
        "page / API",
        "gzip KiB",
        "raw KiB",
        "first request ms",
    ]
    return render_table(headers, rows)


def verdicts(results: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        time_ok = r["server_p99_ms"] < SERVER_MS_TARGET
        size_ok = r["gzip_bytes"] < BYTES_TARGET
        lines.append(
            f"{r['scenario']}: server p99 {r['server_p99_ms']} ms "
            f"({'meets' if time_ok else 'MISSES'} < {SERVER_MS_TARGET:.0f} ms), "
            f"{r['gzip_bytes'] / 1024:.0f} KiB over the wire "
            f"({'meets' if size_ok else 'MISSES'} < {BYTES_TARGET // 1024} KiB; "
            f"{r['raw_bytes'] / 1024:.0f} KiB uncompressed, "
            f"{'meets' if r['raw_bytes'] < BYTES_TARGET else 'misses'} it too)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} requests per scenario")
    args = parser.parse_args(argv)
    runs = QUICK_RUNS if args.quick else FULL_RUNS

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="cronwell-bench-ui-") as tmp:
        workdir = Path(tmp)
        scripts = workdir / "scripts"
        scripts.mkdir()
        script = scripts / "noop.sh"
        script.write_text("#!/bin/bash\nexit 0\n")
        script.chmod(0o755)
        with cronwell_server(workdir, scripts, pool_size=4) as server:
            client = Client(server)
            log(f"seeding {JOBS} jobs")
            job_ids = seed(client, script)
            run_now(client, job_ids[::5])
            wait_idle(client, len(job_ids[::5]))
            started = time.perf_counter()
            first = fetch_page(client, gzip=True)
            log(
                f"first page {first.server_ms} ms server, {(time.perf_counter() - started) * 1000:.0f} ms client"
            )
            results = [measure(client, "some-ran", runs, first.server_ms)]
            log("running every job, then 2,000 runs of ten jobs")
            run_now(client, [j for n, j in enumerate(job_ids) if n % 5])
            run_now(client, job_ids[:10] * 200)
            wait_idle(client, len(job_ids) + 2000)
            results.append(measure(client, "all-ran", runs, None))
            log("an admin key closes the service; signing in through the form")
            admin = client.json(
                "POST",
                "/api/users/",
                {"name": "Admin", "email": "admin@example.com", "role": "admin"},
            )["user_id"]
            client.key = client.json("POST", f"/api/users/{admin}/keys", {"name": "bench"})[
                "api_key"
            ]
            sign_in(client, client.key)
            results.append(measure(client, "signed-in", runs, None))
    print(table(results))
    for line in verdicts(results):
        print(line)
    print(json_line("ui", results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
