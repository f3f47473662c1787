"""Cluster benchmark: 1, 2 and 3 cronwell nodes on SQLite and on MongoDB, in one run.

    python -m bench.cluster [--quick] [--runs N] [--burst N] [--mongo-burst N]

Each configuration (store x node count) starts that many `cronwell serve` processes on
one fresh store: a SQLite file, or a fresh database on a MongoDB server (the `mongod`
at MONGO_URI, else a secantusdb server this run starts, named in the rows: a server
written in Python, so its figures are its own, not a `mongod`'s). Then:
- burst: N one-off EchoJob jobs due at one instant, posted round-robin through the
  nodes' APIs; fires per second is N over the span from the due time to the last start;
- steady: one-off jobs due STEADY_RATE a second for STEADY_SECONDS; lateness is each
  run's start minus its due time (p50 / p99 over the runs), read from the store;
- API: closed-loop `GET /api/scheduler/jobs/<id>` from API_CLIENTS clients spread
  evenly over the nodes, all at once; requests per second over all nodes.
Configurations take turns run by run (the order reversed every other run), so a slow
spell of the shared machine does not land on one of them; the table gives medians over
the runs, with the spread of fires/s and req/s and the load average during the runs.
The last line is one JSON object: `{"bench": "cluster", "results": [{"store", "nodes",
"runs", "fires_per_s", "burst_late_p99_ms", "steady_late_p50_ms", "steady_late_p99_ms",
"api_requests_per_s", "load_avg", "raw": [...]}]}`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api.config import Settings
from bench.api_servers import Server, cronwell_node
from bench.common import fmt, json_line, median_or_none, percentile, render_table, spread
from bench.http_load import Request, call, post_json, run_phase_across
from bench.store import mongo_server
from engine.model import Execution, Status
from stores import open_store

API_CLIENTS = 12
STEADY_RATE = 50
STEADY_SECONDS = 4.0
POOL_SIZE = 10
#: seconds a configuration waits for its fires to end before it reports what it has
SETTLE_TIMEOUT = 120.0
ACTIVE = (Status.QUEUED, Status.RUNNING, Status.SCHEDULED)
#: jobs posted to measure the posting rate before each phase
PROBE = 30


@dataclass(frozen=True, slots=True)
class Target:
    """One store to measure on: a label for the table, the URL the nodes are given."""

    label: str
    url: str  # "" for SQLite: a fresh file per configuration
    burst: int
    #: job posts a second to plan the lead before the due time for (a safe low guess)
    posts_per_s: float
    #: one-off fires a second in the steady phase
    steady_rate: int


@contextmanager
def nodes(count: int, workdir: Path, store_url: str, db_name: str) -> Iterator[list[Server]]:
    scripts = workdir / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                cronwell_node(
                    workdir / f"n{i}", scripts, POOL_SIZE, store_url, f"bench-n{i}", db_name
                )
            )
            for i in range(count)
        ]


def post_round_robin(servers: list[Server], bodies: Sequence[dict[str, Any]]) -> list[str]:
    """Post body i through node i mod N, the nodes' shares at once (one keep-alive
    connection each); the job ids, in the bodies' order."""
    ids: list[str] = [""] * len(bodies)
    failures: list[str] = []

    def share(index: int) -> None:
        server = servers[index]
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        try:
            for i in range(index, len(bodies), len(servers)):
                data = json.dumps(bodies[i]).encode()
                headers = {"Content-Type": "application/json"}
                conn.request("POST", "/api/scheduler/jobs", body=data, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200:
                    failures.append(f"{response.status} {answer[:200]!r}")
                    return
                ids[i] = json.loads(answer)["job_id"]
        finally:
            conn.close()

    threads = [threading.Thread(target=share, args=(i,)) for i in range(len(servers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"scheduling failed: {failures[0]}")
    return ids


def one_off(user: str, name: str, due: datetime) -> dict[str, Any]:
    return {
        "user_id": user,
        "name": name,
        "job_class_string": "jobs.echo.EchoJob",
        "run_date": due.isoformat(),
    }


class Ledger:
    """The store the nodes share, opened by the benchmark to read the runs from."""

    def __init__(self, url: str, db_name: str) -> None:
        self.store = open_store(Settings(store_url=url, db_name=db_name))
        #: runs the phases so far must have left (one per one-off job)
        self.expected = 0

    def wait_ended(self, job_ids: set[str], after: datetime) -> list[Execution]:
        """The runs of `job_ids` once every job so far has a run and none is waiting or
        running (counted, so the wait reads little from the server it measures)."""
        self.expected += len(job_ids)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if datetime.now(UTC) < after or self.store.count_executions() < self.expected:
                continue
            if not any(self.store.count_executions(status=s) for s in ACTIVE):
                break
        return [e for e in self.store.list_executions(limit=10**7) if e.job_id in job_ids]

    def close(self) -> None:
        self.store.close()


def lateness_ms(runs: list[Execution]) -> list[float]:
    return [
        (e.started_at - e.scheduled_for).total_seconds() * 1000
        for e in runs
        if e.status is Status.COMPLETED and e.started_at and e.scheduled_for
    ]


def exactly_once(ids: list[str], runs: list[Execution]) -> dict[str, int]:
    """How far the runs are from one completed run per job: lost (no run at all),
    doubled (runs beyond the first) and ended otherwise (failed, missed...)."""
    per_job = Counter(e.job_id for e in runs)
    return {
        "lost": sum(1 for j in ids if per_job[j] == 0),
        "doubled": sum(n - 1 for n in per_job.values() if n > 1),
        "not_completed": sum(1 for e in runs if e.status is not Status.COMPLETED),
    }


def posting_rate(servers: list[Server], user: str, guess: float) -> float:
    """Job posts a second the nodes take right now, measured on PROBE jobs due in a day
    (they never fire here), halved for safety and capped by `guess`: a fixed guess
    failed on the shared machine whenever its load doubled."""
    later = datetime.now(UTC) + timedelta(days=1)
    began = time.perf_counter()
    post_round_robin(servers, [one_off(user, f"probe {i}", later) for i in range(PROBE)])
    return min(guess, PROBE / (time.perf_counter() - began) / 2)


def burst(servers: list[Server], ledger: Ledger, user: str, target: Target) -> dict[str, Any]:
    rate = posting_rate(servers, user, target.posts_per_s)
    due = datetime.now(UTC) + timedelta(seconds=3 + target.burst / rate)
    bodies = [one_off(user, f"burst {i}", due) for i in range(target.burst)]
    ids = post_round_robin(servers, bodies)
    if datetime.now(UTC) > due:
        raise RuntimeError("posting the burst took longer than its lead; lower the burst")
    runs = ledger.wait_ended(set(ids), due)
    starts = [e.started_at for e in runs if e.status is Status.COMPLETED and e.started_at]
    span = max(((s - due).total_seconds() for s in starts), default=0.0)
    late = lateness_ms(runs)
    return {
        "fires_per_s": len(starts) / span if span > 0 else None,
        "burst_late_p99_ms": percentile(late, 99) if late else None,
        **{f"burst_{k}": v for k, v in exactly_once(ids, runs).items()},
        "ids": ids,
    }


def steady(servers: list[Server], ledger: Ledger, user: str, target: Target) -> dict[str, Any]:
    count = int(target.steady_rate * STEADY_SECONDS)
    rate = posting_rate(servers, user, target.posts_per_s)
    first = datetime.now(UTC) + timedelta(seconds=2 + count / rate)
    bodies = [
        one_off(user, f"steady {i}", first + timedelta(seconds=i / target.steady_rate))
        for i in range(count)
    ]
    ids = post_round_robin(servers, bodies)
    if datetime.now(UTC) > first:
        raise RuntimeError("posting the steady jobs took longer than their lead")
    runs = ledger.wait_ended(set(ids), first + timedelta(seconds=STEADY_SECONDS))
    late = lateness_ms(runs)
    return {
        "steady_late_p50_ms": percentile(late, 50) if late else None,
        "steady_late_p99_ms": percentile(late, 99) if late else None,
        **{f"steady_{k}": v for k, v in exactly_once(ids, runs).items()},
    }


def api_load(servers: list[Server], ids: list[str], seconds: float) -> dict[str, Any]:
    """GET job from API_CLIENTS clients spread over the nodes, all at once."""
    per_client = max(50, int(seconds * 1500 / API_CLIENTS))
    targets = [
        (
            servers[c % len(servers)].host,
            servers[c % len(servers)].port,
            [
                Request("GET", f"/api/scheduler/jobs/{ids[(c * 7 + k) % len(ids)]}")
                for k in range(per_client)
            ],
        )
        for c in range(API_CLIENTS)
    ]
    result = run_phase_across(targets)
    return {"api_requests_per_s": result.requests_per_s, "api_errors": result.errors}


def measure(target: Target, count: int, api_seconds: float, mongo_drop: Any) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cronwell-cluster-") as tmp:
        work = Path(tmp)
        url = target.url or f"sqlite:///{work / 'shared.db'}"
        db_name = f"bench_cluster_{count}_{int(time.time() * 1000)}"
        try:
            with nodes(count, work, url, db_name) as servers:
                ledger = Ledger(url, db_name)
                try:
                    first = servers[0]
                    _, user = call(
                        first.host,
                        first.port,
                        post_json("/api/users/", {"name": "B", "email": "b@example.com"}),
                    )
                    fired = burst(servers, ledger, user["user_id"], target)
                    ids = fired.pop("ids")
                    late = steady(servers, ledger, user["user_id"], target)
                    served = api_load(servers, ids, api_seconds)
                finally:
                    ledger.close()
        finally:
            if target.url:
                mongo_drop(db_name)
    load = (load_before + os.getloadavg()[0]) / 2
    return {"store": target.label, "nodes": count, **fired, **late, **served, "load_avg": load}


FIGURES = (
    "fires_per_s",
    "burst_late_p99_ms",
    "steady_late_p50_ms",
    "steady_late_p99_ms",
    "api_requests_per_s",
    "load_avg",
)


def summarise(label: str, count: int, raw: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"store": label, "nodes": count, "runs": len(raw)}
    for figure in FIGURES:
        summary[figure] = median_or_none(r[figure] for r in raw)
    summary["fires_spread"] = spread(r["fires_per_s"] for r in raw)
    summary["api_spread"] = spread(r["api_requests_per_s"] for r in raw)
    for phase in ("burst", "steady"):
        for kind in ("lost", "doubled", "not_completed"):
            summary[f"{phase}_{kind}"] = sum(r[f"{phase}_{kind}"] for r in raw)
    summary["raw"] = raw
    return summary


def _range(values: tuple[float, float] | None) -> str:
    return f"{fmt(values[0], 0)}..{fmt(values[1], 0)}" if values else "-"


def run_all(
    targets: list[Target], runs: int, api_seconds: float, mongo_uri: str
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Every configuration `runs` times, taking turns (reversed every other run)."""
    import pymongo

    configs = [(t, n) for t in targets for n in (1, 2, 3)]
    raw: dict[tuple[str, int], list[dict[str, Any]]] = {(t.label, n): [] for t, n in configs}
    client: Any = pymongo.MongoClient(mongo_uri)
    try:
        for run in range(runs):
            for target, count in configs if run % 2 == 0 else configs[::-1]:
                try:
                    figures = measure(target, count, api_seconds, client.drop_database)
                except RuntimeError as exc:  # a lead too short on a slow spell: say so, go on
                    print(f"{target.label} x{count} failed: {exc}", file=sys.stderr)
                    continue
                raw[(target.label, count)].append(figures)
                print(
                    f"run {run + 1}/{runs} {target.label} x{count}: "
                    f"{fmt(figures['fires_per_s'], 0)} fires/s, "
                    f"{fmt(figures['api_requests_per_s'], 0)} req/s, "
                    f"load {figures['load_avg']:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        client.close()
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one run, fewer jobs")
    parser.add_argument("--runs", type=int, help="runs of every configuration (default 3)")
    parser.add_argument("--burst", type=int, help="burst jobs on SQLite (default 1500)")
    parser.add_argument("--mongo-burst", type=int, help="burst jobs on MongoDB (default 100)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    sqlite_burst = args.burst or (300 if args.quick else 1500)
    mongo_burst = args.mongo_burst or (50 if args.quick else 100)
    api_seconds = 1.0 if args.quick else 3.0
    with (
        tempfile.TemporaryDirectory(prefix="cronwell-cluster-mongo-") as folder,
        mongo_server(Path(folder)) as (mongo_label, mongo_uri),
    ):
        targets = [
            Target("sqlite (one file)", "", sqlite_burst, 300, STEADY_RATE),
            # secantusdb took 40-200 ms a job post at load average 10 with one node
            Target(mongo_label, mongo_uri, mongo_burst, 5, 20),
        ]
        raw = run_all(targets, runs, api_seconds, mongo_uri)
    results = [summarise(label, count, found) for (label, count), found in raw.items()]
    rows = [
        [
            r["store"],
            str(r["nodes"]),
            str(r["runs"]),
            fmt(r["fires_per_s"], 0),
            _range(r["fires_spread"]),
            fmt(r["burst_late_p99_ms"], 0),
            fmt(r["steady_late_p50_ms"], 1),
            fmt(r["steady_late_p99_ms"], 1),
            fmt(r["api_requests_per_s"], 0),
            _range(r["api_spread"]),
            "; ".join(
                "/".join(str(r[f"{p}_{k}"]) for k in ("lost", "doubled", "not_completed"))
                for p in ("burst", "steady")
            ),
            fmt(r["load_avg"], 1),
        ]
        for r in results
    ]
    print(
        render_table(
            [
                "store",
                "nodes",
                "runs",
                "burst fires/s",
                "(spread)",
                "burst late p99 ms",
                "steady late p50 ms",
                "steady late p99 ms",
                "GET job req/s",
                "(spread)",
                "lost/doubled/not completed (burst; steady)",
                "load avg",
            ],
            rows,
        )
    )
    print(json_line("cluster", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
