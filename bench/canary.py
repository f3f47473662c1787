"""Due -> a bash script's first line: how promptly `cronwell serve` starts a fire.

    python -m bench.canary [--fires 100] [--gap 0.05] [--phases quiet,list-jobs,get-job]
                           [--parent TREE] [--runs N]

A real server on SQLite with 1,000 stored jobs (as bench.api seeds them) is given
`fires` one-off bash jobs per phase, due `gap` seconds apart. Each is the canary
script of bench.api: it appends its job id and bash's own clock (`$EPOCHREALTIME`) to
a log, so its lateness is bash's start minus the due time, with nothing between (no
extra process to read a clock). The engine's own recorded start (`started_at`, taken
by the worker just before the runner) splits it into the engine's part and the
process start's. Phases: `quiet` (no other requests), `list-jobs` (LIST_CLIENTS
keep-alive clients listing the 1,000 jobs back to back throughout), `get-job` (the
same with GET /api/job/<id>), `schedule-job` (the same posting new one-off jobs, each a
command the engine's loop thread applies).

With `--parent TREE` (a checkout of another commit, e.g. main) every run serves both
trees in turn, the order swapping run by run, so the A/B is same-run on the same
machine; figures are medians over the runs of each run's percentiles. The load average
is printed with every run: on a shared machine, read the figures beside it.

Last line: `{"bench": "canary", "results": [{"tree", "phase", "p50_ms", "p99_ms",
"max_ms", "engine_p50_ms", "engine_p99_ms", "on_time", "fires"}]}`.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.api import (
    ON_TIME_SECONDS,
    POOL_SIZE,
    future_date,
    schedule_request,
    seed,
    write_scripts,
)
from bench.api_servers import Server, cronwell_server
from bench.common import fmt, json_line, percentile, render_table
from bench.http_load import Request, call

HERE = Path(__file__).resolve().parent.parent
PHASES = ("quiet", "list-jobs", "get-job", "schedule-job")
#: each phase's load: a GET path, or SCHEDULE for new one-off jobs due a day later
SCHEDULE = "schedule-job"
LOADS = {"list-jobs": "/api/jobs", "get-job": "/api/job/seed-7", "schedule-job": SCHEDULE}
LIST_CLIENTS = 8
#: seconds between scheduling a phase's fires and the first of them: a base, plus an
#: allowance per fire for posting them all first (up to 30 ms each at load average 13)
FIRST_DUE = 1.0
POST_ALLOWANCE = 0.05
#: how long after the last due time a phase waits for the stragglers
SETTLE = 5.0


@dataclass(slots=True)
class PhaseFigures:
    """One phase of one run: each fire's lateness, by bash's clock and the engine's."""

    tree: str
    phase: str
    fires: int
    late_ms: list[float] = field(default_factory=list)
    engine_ms: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float | None:
            return percentile(values, q) if values else None

        return {
            "tree": self.tree,
            "phase": self.phase,
            "p50_ms": pct(self.late_ms, 50),
            "p99_ms": pct(self.late_ms, 99),
            "max_ms": max(self.late_ms, default=None),
            "engine_p50_ms": pct(self.engine_ms, 50),
            "engine_p99_ms": pct(self.engine_ms, 99),
            "on_time": sum(1 for v in self.late_ms if v <= ON_TIME_SECONDS * 1000),
            "fires": self.fires,
        }


@contextmanager
def background_load(
    server: Server, path: str | None, clients: int, noop: Path | None = None
) -> Iterator[None]:
    """`clients` threads sending GET `path` back to back until the block ends (for
    SCHEDULE: each posting new bash jobs of the `noop` script, due a day later)."""
    stop = threading.Event()

    def client(number: int) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        sent = 0
        while not stop.is_set():
            if path == SCHEDULE and noop is not None:
                sent += 1
                job_id = f"load-{number}-{sent}-{time.monotonic_ns()}"
                req = schedule_request(job_id, noop, future_date(1))
            else:
                req = Request("GET", path or "/")
            try:
                conn.request(req.method, req.path, body=req.body, headers=req.all_headers())
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        conn.close()

    threads = [
        threading.Thread(target=client, args=(n,), daemon=True)
        for n in range(clients if path else 0)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def read_log(log: Path) -> dict[str, float]:
    fired: dict[str, float] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            job_id, _, stamp = line.partition(" ")
            fired[job_id] = float(stamp.replace(",", "."))
    return fired


def engine_start(server: Server, job_id: str) -> float | None:
    status, body = call(
        server.host, server.port, Request("GET", f"/api/scheduler/executions?job_id={job_id}")
    )
    records = body.get("data") if status == 200 and isinstance(body, dict) else None
    if records and records[0].get("started_at"):
        return datetime.fromisoformat(records[0]["started_at"]).timestamp()
    return None


def run_phase(
    server: Server, scripts: Any, tree: str, phase: str, fires: int, gap: float
) -> PhaseFigures:
    """Schedule the phase's fires, hold its load through them, read when each started."""
    lead = FIRST_DUE + POST_ALLOWANCE * fires
    base = time.time() + lead
    dues = {f"canary-{tree}-{phase}-{k}": base + k * gap for k in range(fires)}
    for job_id, due in dues.items():
        run_date = datetime.fromtimestamp(due, UTC).isoformat()
        request = schedule_request(
            job_id, scripts.canary, run_date, [job_id, str(scripts.canary_log)]
        )
        status, body = call(server.host, server.port, request)
        if status != 200:
            raise RuntimeError(f"{tree}: canary {job_id} refused: {status} {body}")
    if time.time() > base - 0.2:
        raise RuntimeError(f"{tree}: scheduling {fires} fires took longer than {lead:g} s")
    last = base + (fires - 1) * gap
    with background_load(server, LOADS.get(phase), LIST_CLIENTS, scripts.noop):
        time.sleep(max(0.0, last - time.time() + 0.1))
    deadline = last + SETTLE
    while not set(dues) <= set(read_log(scripts.canary_log)) and time.time() < deadline:
        time.sleep(0.1)
    fired = read_log(scripts.canary_log)
    figures = PhaseFigures(tree, phase, fires)
    for job_id, due in dues.items():
        if job_id in fired:
            figures.late_ms.append((fired[job_id] - due) * 1000)
        started = engine_start(server, job_id)
        if started is not None:
            figures.engine_ms.append((started - due) * 1000)
    return figures


def one_tree(
    tree: str, path: Path, workdir: Path, phases: Sequence[str], fires: int, gap: float
) -> list[PhaseFigures]:
    scripts = write_scripts(workdir / "scripts", workdir)
    with cronwell_server(
        workdir / "server", workdir / "scripts", POOL_SIZE, pythonpath=str(path)
    ) as server:
        seed(server, scripts)
        return [run_phase(server, scripts, tree, phase, fires, gap) for phase in phases]


def median_rows(runs: list[list[PhaseFigures]]) -> list[dict[str, Any]]:
    """Per (tree, phase): the median over the runs of each figure."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        for figures in run:
            grouped.setdefault((figures.tree, figures.phase), []).append(figures.row())
    rows = []
    for (tree, phase), rows_of in grouped.items():
        merged: dict[str, Any] = {"tree": tree, "phase": phase, "runs": len(rows_of)}
        for key in ("p50_ms", "p99_ms", "max_ms", "engine_p50_ms", "engine_p99_ms"):
            present = [r[key] for r in rows_of if r[key] is not None]
            merged[key] = statistics.median(present) if present else None
            merged[f"{key}_each"] = present
        merged["on_time"] = sum(r["on_time"] for r in rows_of)
        merged["fires"] = sum(r["fires"] for r in rows_of)
        rows.append(merged)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.canary", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--fires", type=int, default=100, help="fires per phase")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between due times")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--parent", type=Path, help="a checkout to A/B against, run by run")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    trees = [("this", HERE)] + ([("parent", args.parent.resolve())] if args.parent else [])
    runs: list[list[PhaseFigures]] = []
    with tempfile.TemporaryDirectory(prefix="bench-canary-") as temp:
        for run in range(args.runs):
            order = trees if run % 2 == 0 else trees[::-1]
            for name, path in order:
                print(f"run {run + 1}, {name}: load average {os.getloadavg()[0]:.2f}", flush=True)
                runs.append(
                    one_tree(name, path, Path(temp) / f"{run}-{name}", phases, args.fires, args.gap)
                )
    rows = median_rows(runs)
    headers = [
        "tree",
        "phase",
        "runs",
        "bash p50",
        "bash p99",
        "bash max",
        "engine p50",
        "engine p99",
        "within 10 ms",
    ]
    table = [
        [
            r["tree"], r["phase"], str(r["runs"]), fmt(r["p50_ms"]), fmt(r["p99_ms"]),
            fmt(r["max_ms"]), fmt(r["engine_p50_ms"]), fmt(r["engine_p99_ms"]),
            f"{r['on_time']}/{r['fires']}",
        ]
        for r in rows
    ]  # fmt: skip
    print("\ndue -> start, ms (medians over the runs of each run's percentile):")
    print(render_table(headers, table))
    print(json_line("canary", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
