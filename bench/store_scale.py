"""`python -m bench.store --scale`: a million jobs and a million executions in SQLite,
through a real `cronwell serve` on loopback.

Start-up: a file holding `jobs` jobs (bench/store_fill.py: bulk-inserted through the
store's own schema) is served; the figure is the wall time from starting the process
to the first 200 from /api/health (Sanic answers only once `before_server_start` has
opened the store, recovered, and loaded and scheduled every job its load window holds,
so this is the moment the service serves and the first due fire would run), with the
process's resident memory then (VmRSS) and at its peak (VmHWM), and the number of jobs
the engine says it put in memory (its "recovered N scheduled job(s)" log line: with
the default load window, those due within it; `--hold-all` adds the same tree holding
every job, CRONWELL_LOAD_AHEAD=0, and `--daily` fills jobs due over the next day
instead of months away).

Queries: a file holding `executions` executions (1,000 jobs of 10 users) is served, and
each endpoint is asked `requests` times over one keep-alive connection; the figure is
the median request time, client-side (send to last byte read).

With `--parent TREE` (a checkout of the parent commit) every run alternates the two
trees, each on a file filled by its own store's schema, so the A/B is in the same run
on the same machine. Medians over `runs` runs.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from bench.api_servers import clean_env, cronwell_command
from bench.common import free_port

HERE = Path(__file__).resolve().parent.parent
FILLER = HERE / "bench" / "store_fill.py"
STARTUP_TIMEOUT = 600.0
STOP_TIMEOUT = 120.0
#: the issue's targets
STARTUP_TARGET_S = 15.0
MEMORY_TARGET_MB = 1024.0
STATS_TARGET_MS = 100.0
PAGE_TARGET_MS = 20.0
#: ids the filler gives (bench/store_fill.py)
USER = f"{0xA0000000 + 3:08x}{'0' * 16}"
JOB = f"{0xB0000000:08x}{7:016x}"
QUERIES = {
    "stats": "/api/scheduler/stats",
    "stats-of-user": f"/api/scheduler/stats?user_id={USER}",
    "page-job-status": f"/api/scheduler/executions?job_id={JOB}&status=failed&limit=50",
    "page-user-status": f"/api/scheduler/executions?user_id={USER}&status=completed&limit=50",
    "page-user": f"/api/scheduler/executions?user_id={USER}&limit=50",
    "page-job": f"/api/scheduler/executions?job_id={JOB}&limit=50",
}
#: which target each query is held to
QUERY_TARGETS = {
    name: STATS_TARGET_MS if name.startswith("stats") else PAGE_TARGET_MS for name in QUERIES
}


@dataclass(frozen=True, slots=True)
class Tree:
    name: str
    path: Path
    #: environment the tree's server gets besides the bench's (CRONWELL_LOAD_AHEAD=0:
    #: every job in memory, the load before the load window, on the same code)
    env: tuple[tuple[str, str], ...] = ()
    #: whose filled files it serves (None: its own); a tree of the same code shares them
    files: str | None = None


@dataclass(slots=True)
class Figures:
    """One tree's figures over the runs: lists, one value per run."""

    fill_s: dict[str, float] = field(default_factory=dict)
    startup_s: list[float] = field(default_factory=list)
    #: CPU seconds the server used until it served (on a shared machine, the figure
    #: other load moves least)
    startup_cpu_s: list[float] = field(default_factory=list)
    #: the 1-minute load average when each start began
    load: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    scheduled: list[int | None] = field(default_factory=list)
    queries_ms: dict[str, list[float]] = field(default_factory=dict)


def fill(tree: Tree, kind: str, path: Path, count: int, daily: bool = False) -> float:
    """Fill `path` with the filler run against `tree`'s store; its own seconds."""
    argv = [sys.executable, str(FILLER), kind, str(path), str(count), "--tree", str(tree.path)]
    if daily and kind == "jobs":
        argv.append("--daily")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"filling {path} failed: {done.stderr.strip()[-800:]}")
    found = re.search(r"'seconds': ([0-9.]+)", done.stdout)
    return float(found.group(1)) if found else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


@dataclass(slots=True)
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    #: seconds from starting the process to the first healthy answer
    startup_s: float


def _healthy(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/api/health")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except OSError:
        return False


@contextmanager
def serving(tree: Tree, store: Path, workdir: Path) -> Iterator[Served]:
    """`cronwell serve` of `tree` on the SQLite file `store`, until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "scripts").mkdir(exist_ok=True)
    port = free_port()
    argv = [
        *cronwell_command(),
        "serve",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--store", f"sqlite:///{store}",
        "--script-root", str(workdir / "scripts"),
        "--pool-size", "4",
        "--node-id", f"bench-{tree.name}",
    ]  # fmt: skip
    env = clean_env(
        CRONWELL_DATA_DIR=str(workdir / "data"), PYTHONPATH=str(tree.path), **dict(tree.env)
    )
    log = workdir / f"{tree.name}.log"
    with log.open("wb") as sink:
        began = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            while not _healthy(port):
                if process.poll() is not None:
                    raise RuntimeError(f"{tree.name} exited: {log.read_text()[-800:]}")
                if time.perf_counter() - began > STARTUP_TIMEOUT:
                    raise RuntimeError(f"{tree.name} not healthy: {log.read_text()[-800:]}")
                time.sleep(0.02)
            yield Served(process, port, log, time.perf_counter() - began)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def scheduled_jobs(log: Path) -> int | None:
    found = re.search(r"recovered (\d+) scheduled job", log.read_text(errors="replace"))
    return int(found.group(1)) if found else None


def time_queries(port: int, requests: int) -> dict[str, float]:
    """Median milliseconds of each query, `requests` times each, taking turns."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times: dict[str, list[float]] = {name: [] for name in QUERIES}
    try:
        for path in QUERIES.values():  # one warm-up each (first reads of the file)
            _get(connection, path)
        for _ in range(requests):
            for name, path in QUERIES.items():
                began = time.perf_counter()
                _get(connection, path)
                times[name].append((time.perf_counter() - began) * 1000)
    finally:
        connection.close()
    return {name: median(values) for name, values in times.items()}


def _get(connection: http.client.HTTPConnection, path: str) -> dict[str, Any]:
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def check_answers(port: int, executions: int) -> None:
    """The figures are of right answers: stats count every execution, pages are full."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        stats = _get(connection, QUERIES["stats"])["stats"]
        if stats["total_executions"] != executions:
            raise RuntimeError(f"stats counted {stats['total_executions']} of {executions}")
        for name in ("page-job-status", "page-user-status", "page-user"):
            page = _get(connection, QUERIES[name])
            if len(page["data"]) != min(50, page["total"]) or not page["total"]:
                raise RuntimeError(f"{name}: {len(page['data'])} rows of {page['total']}")
    finally:
        connection.close()


def run(
    folder: Path,
    trees: Sequence[Tree],
    *,
    jobs: int,
    executions: int,
    runs: int,
    requests: int,
    log: Any = None,
    daily: bool = False,
) -> dict[str, Figures]:
    """Fill each tree's files, then `runs` rounds; each round starts every tree on its
    jobs file (alternating which goes first) and times queries on its executions file.
    `daily`: the jobs fire every day (bench/store_fill.py)."""

    def say(text: str) -> None:
        if log is not None:
            print(text, file=log, flush=True)

    figures = {tree.name: Figures() for tree in trees}
    files: dict[str, tuple[Path, Path]] = {}
    for tree in trees:
        owner = tree.files or tree.name
        jobs_file = folder / f"{owner}-jobs{'-daily' if daily else ''}.db"
        executions_file = folder / f"{owner}-executions.db"
        for kind, path, count in (
            ("jobs", jobs_file, jobs),
            ("executions", executions_file, executions),
        ):
            if path.exists():  # kept from an earlier run (--files): its count is checked
                say(f"... {tree.name}: reusing {path}")
                continue
            say(f"... {tree.name}: filling {count:,} {kind}")
            figures[tree.name].fill_s[kind] = fill(tree, kind, path, count, daily)
        files[tree.name] = (jobs_file, executions_file)
    for round_ in range(runs):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for tree in order:
            jobs_file, executions_file = files[tree.name]
            workdir = folder / f"{tree.name}-run{round_}"
            mine = figures[tree.name]
            mine.load.append(os.getloadavg()[0])
            with serving(tree, jobs_file, workdir / "startup") as served:
                rss, peak = memory_mb(served.process.pid)
                mine.startup_cpu_s.append(cpu_seconds(served.process.pid))
                mine.startup_s.append(served.startup_s)
                mine.rss_mb.append(rss)
                mine.peak_mb.append(peak)
                mine.scheduled.append(scheduled_jobs(served.log))
            say(
                f"... run {round_ + 1}/{runs} {tree.name}: start-up {served.startup_s:.2f} s "
                f"({mine.startup_cpu_s[-1]:.1f} CPU s, load {mine.load[-1]:.1f}), "
                f"RSS {rss:.0f} MiB (peak {peak:.0f}), scheduled {mine.scheduled[-1]}"
            )
            with serving(tree, executions_file, workdir / "queries") as served:
                check_answers(served.port, executions)
                for name, ms in time_queries(served.port, requests).items():
                    mine.queries_ms.setdefault(name, []).append(ms)
            say(
                f"... run {round_ + 1}/{runs} {tree.name}: "
                + ", ".join(f"{n} {v[-1]:.1f} ms" for n, v in mine.queries_ms.items())
            )
    return figures


def _median(values: Sequence[float]) -> float | None:
    return median(values) if values else None


def results(figures: dict[str, Figures]) -> list[dict[str, Any]]:
    """One JSON row per tree and figure: the median over runs and every run's value."""
    rows: list[dict[str, Any]] = []
    for tree, f in figures.items():
        measured: dict[str, tuple[str, Sequence[float]]] = {
            "startup": ("s", f.startup_s),
            "startup-cpu": ("s", f.startup_cpu_s),
            "load": ("load average", f.load),
            "rss": ("MiB", f.rss_mb),
            "peak-rss": ("MiB", f.peak_mb),
            **{name: ("ms", values) for name, values in f.queries_ms.items()},
        }
        for workload, (unit, values) in measured.items():
            value = _median(values)
            rows.append(
                {
                    "tree": tree,
                    "workload": workload,
                    "unit": unit,
                    "median": None if value is None else round(value, 3),
                    "runs": [round(v, 3) for v in values],
                }
            )
    return rows


def report(figures: dict[str, Figures], *, jobs: int, executions: int) -> str:
    """The table (medians, spread in brackets), the A/B ratios and the targets."""
    from bench.common import render_table, verdict

    names = list(figures)
    runs = max(len(f.startup_s) for f in figures.values())

    def cell(values: Sequence[float], digits: int) -> str:
        if not values:
            return "n/a"
        return (
            f"{median(values):,.{digits}f} ({min(values):,.{digits}f}..{max(values):,.{digits}f})"
        )

    lines: list[tuple[str, str, list[list[float]], int]] = [
        ("start-up", "s", [figures[n].startup_s for n in names], 2),
        ("start-up CPU", "s", [figures[n].startup_cpu_s for n in names], 2),
        ("load average", "1 min", [figures[n].load for n in names], 1),
        ("RSS when serving", "MiB", [figures[n].rss_mb for n in names], 0),
        ("peak RSS", "MiB", [figures[n].peak_mb for n in names], 0),
        *((q, "ms", [figures[n].queries_ms.get(q, []) for n in names], 2) for q in QUERIES),
    ]
    rows = []
    for label, unit, per_tree, digits in lines:
        row = [label, unit, *(cell(v, digits) for v in per_tree)]
        if len(names) == 2 and per_tree[0] and per_tree[1]:
            row.append(f"{median(per_tree[0]) / median(per_tree[1]):.2f}x")
        rows.append(row)
    headers = ["figure", "unit", *names, *([f"{names[0]} / {names[1]}"] if len(names) == 2 else [])]
    out = [
        (
            f"{jobs:,} jobs (start-up), {executions:,} executions (queries); "
            f"medians of {runs} run(s), spread in brackets"
        ),
        render_table(headers, rows),
        "",
    ]
    this = figures["cronwell"]
    for name in names:
        scheduled = sorted({s for s in figures[name].scheduled if s is not None})
        found = scheduled or "not found in its log"
        out.append(f"jobs the engine put in memory at start ({name}): {found}")
    start = _median(this.startup_s)
    peak = _median(this.peak_mb)
    out.append(
        f"start-up with {jobs:,} jobs: {start:.2f} s  target < {STARTUP_TARGET_S:g} s  "
        f"{verdict(start is not None and start < STARTUP_TARGET_S)}"
    )
    out.append(
        f"peak resident memory: {peak:.0f} MiB  target < {MEMORY_TARGET_MB:g} MiB  "
        f"{verdict(peak is not None and peak < MEMORY_TARGET_MB)}"
    )
    for query, target in QUERY_TARGETS.items():
        value = _median(this.queries_ms.get(query, []))
        out.append(
            f"{query} with {executions:,} executions: "
            f"{'n/a' if value is None else f'{value:.2f}'} ms  target < {target:g} ms  "
            f"{verdict(None if value is None else value < target)}"
        )
    for name in names:
        fills = figures[name].fill_s
        if not fills:  # it served another tree's files
            continue
        out.append(
            f"filling ({name}): jobs {fills.get('jobs', 0):.1f} s, "
            f"executions {fills.get('executions', 0):.1f} s"
        )
    return "\n".join(out)
