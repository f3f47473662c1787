"""Cluster benchmark: 1, 2 and 3 cronwell nodes on one store, in one run.

    python -m bench.cluster [--quick] [--jobs N]

For each node count, that many `cronwell serve` processes share one fresh SQLite file
(and, when `MONGO_URI` is set, one fresh MongoDB database: labelled with the server it
ran against). Then:
- fires: N one-off EchoJob jobs due at one instant, created round-robin through the
  nodes' APIs; fires per second is N over the span from the due time to the last start,
  and lateness is each run's start minus its due time, from the store's records;
- API: closed-loop `GET /api/scheduler/jobs/<id>` from 16 clients spread over the
  nodes for a few seconds; requests per second over all nodes.
Prints a table and, as its last line, one JSON object:
`{"bench": "cluster", "results": [{"store", "nodes", "fires_per_s", "lateness_p50_ms",
"lateness_p99_ms", "api_requests_per_s"}]}`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.api_servers import Server, cronwell_node
from bench.common import fmt, json_line, percentile, render_table
from bench.http_load import Request, call, post_json, run_phase

API_CLIENTS = 16


@contextmanager
def nodes(count: int, workdir: Path, store_url: str, db_name: str) -> Iterator[list[Server]]:
    scripts = workdir / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                cronwell_node(workdir / f"n{i}", scripts, 10, store_url, f"bench-n{i}", db_name)
            )
            for i in range(count)
        ]


def _executions(server: Server, total: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    offset = 0
    while len(found) < total:
        path = f"/api/scheduler/executions?limit=1000&offset={offset}"
        status, body = call(server.host, server.port, Request("GET", path))
        if status != 200 or not body["data"]:
            break
        found += body["data"]
        offset += 1000
    return found


def measure(servers: list[Server], jobs: int, api_seconds: float) -> dict[str, Any]:
    first = servers[0]
    _, user = call(
        first.host, first.port, post_json("/api/users/", {"name": "B", "email": "b@example.com"})
    )
    due = datetime.now(UTC) + timedelta(seconds=3 + jobs / 400)
    ids: list[str] = []
    for i in range(jobs):
        server = servers[i % len(servers)]
        status, body = call(
            server.host,
            server.port,
            post_json(
                "/api/scheduler/jobs",
                {
                    "user_id": user["user_id"],
                    "name": f"burst {i}",
                    "job_class_string": "jobs.echo.EchoJob",
                    "run_date": due.isoformat(),
                },
            ),
        )
        if status != 200:
            raise RuntimeError(f"scheduling failed: {status} {body}")
        ids.append(body["job_id"])
    if datetime.now(UTC) > due:
        raise RuntimeError("scheduling took longer than the lead; lower --jobs")
    deadline = time.monotonic() + 60
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        time.sleep(0.5)
        runs = [r for r in _executions(first, jobs) if r["status"] == "completed"]
        if len(runs) >= jobs and datetime.now(UTC) > due:
            break
    starts = [datetime.fromisoformat(r["started_at"]) for r in runs]
    late = [(s - due).total_seconds() * 1000 for s in starts]
    span = max((s - due).total_seconds() for s in starts) if starts else None
    plans = [
        [
            Request("GET", f"/api/scheduler/jobs/{ids[(c * 7 + k) % len(ids)]}")
            for k in range(10_000)
        ]
        for c in range(API_CLIENTS)
    ]
    served = 0
    started = time.perf_counter()
    for index, server in enumerate(servers):  # one phase per node, clients split evenly
        share = [
            p[: max(1, int(api_seconds * 300 / len(servers)))] for p in plans[index :: len(servers)]
        ]
        result = run_phase(server.host, server.port, share)
        served += len(result.latencies)
    wall = time.perf_counter() - started
    return {
        "nodes": len(servers),
        "completed": len(runs),
        "fires_per_s": len(runs) / span if span else None,
        "lateness_p50_ms": percentile(late, 50) if late else None,
        "lateness_p99_ms": percentile(late, 99) if late else None,
        "api_requests_per_s": served / wall if wall else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer jobs, shorter API phases")
    parser.add_argument("--jobs", type=int, help="one-off jobs per node count")
    args = parser.parse_args(argv)
    jobs = args.jobs or (300 if args.quick else 1500)
    api_seconds = 1.0 if args.quick else 3.0
    stores: list[tuple[str, str]] = [("sqlite", "")]
    if os.environ.get("MONGO_URI"):
        stores.append(
            (f"mongo ({os.environ['MONGO_URI'].split('@')[-1]})", os.environ["MONGO_URI"])
        )
    results: list[dict[str, Any]] = []
    for label, uri in stores:
        for count in (1, 2, 3):
            with tempfile.TemporaryDirectory(prefix="cronwell-cluster-") as tmp:
                work = Path(tmp)
                url = uri or f"sqlite:///{work / 'shared.db'}"
                db_name = f"bench_cluster_{count}_{int(time.time())}"
                with nodes(count, work, url, db_name) as servers:
                    figures = measure(servers, jobs, api_seconds)
            results.append({"store": label, **figures})
    rows = [
        [
            r["store"],
            str(r["nodes"]),
            f"{r['completed']}/{jobs}",
            fmt(r["fires_per_s"], 0),
            fmt(r["lateness_p50_ms"], 1),
            fmt(r["lateness_p99_ms"], 1),
            fmt(r["api_requests_per_s"], 0),
        ]
        for r in results
    ]
    print(
        render_table(
            ["store", "nodes", "ran", "fires/s", "late p50 ms", "late p99 ms", "GET job req/s"],
            rows,
        )
    )
    print(json_line("cluster", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
