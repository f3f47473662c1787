"""API benchmark: cronwell's scripts surface against Flask + APScheduler 3.11 (the stack
the scripts seed describes), both on SQLite, in one run.

    python -m bench.api [--quick]

For each system: start the server on a free loopback port (cronwell: `cronwell serve`
on a SQLite file with a temp script root, once open and once closed by a stored API key
that every request then carries (`cronwell-key`), to show what checking a key costs;
the peer: `bench.peers.flask_apscheduler`,
werkzeug threaded server, SQLAlchemyJobStore on a SQLite file), store 1,000 jobs
through the API, then run three phases in which 32 clients each send a fixed number of
requests to one endpoint (list jobs, get job, schedule-job with unique ids), and a
fourth in which one client sends get-job requests one at a time. At the start
of each phase two canary jobs are scheduled to fire during it; a canary script records
when it ran, and the report shows how late each fired. Last line:
`{"bench": "api", "results": [{"system", "endpoint", "requests_per_s", "p50_ms",
"p99_ms", "errors"}]}`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.api_servers import Server, cronwell_server, keyed_cronwell_server, peer_server
from bench.common import (
    LatencySummary,
    fmt,
    json_line,
    median_or_none,
    ratio,
    render_table,
    spread,
    verdict,
)
from bench.http_load import PhaseResult, Request, call, post_json, run_phase

CLIENTS = 32
#: get-job from one client, one request at a time: a request's own cost, without the
#: queueing and thread convoys of 32 clients on two cores (the key-cost comparison)
SERIAL = "get-job-1-client"
SEEDED_JOBS = 1000
SEED_CLIENTS = 8
POOL_SIZE = 10
#: requests each client sends per endpoint (list-jobs returns 1,000+ jobs: fewer)
FULL_REQUESTS = {"list-jobs": 10, "get-job": 150, "schedule-job": 100, SERIAL: 2000}
QUICK_REQUESTS = {"list-jobs": 4, "get-job": 40, "schedule-job": 25, SERIAL: 500}
#: rounds of both systems, alternating, each on fresh servers (medians reported)
FULL_ROUNDS = 3
QUICK_ROUNDS = 1
#: seconds after a phase starts at which its canaries are due
CANARY_OFFSETS = (0.3, 0.6)
#: a canary that starts later than this after its due time was not on time
ON_TIME_SECONDS = 0.1
CANARY_WAIT = 15.0
P99_TARGET_MS = 20.0
THROUGHPUT_TARGET = 5.0
#: cronwell closed by a stored key, every request carrying it (next to open mode)
KEYED = "cronwell-key"
#: the same with CRONWELL_KEY_CACHE_SECONDS (`--key-cache`), when asked for
CACHED = "cronwell-key-cached"
KEYED_ENDPOINTS = ("get-job", "schedule-job")
#: checking a key may cost at most this share of a request
KEY_COST_TARGET = 0.05
KEY_CHECKS = 3000

NOOP_SCRIPT = "#!/bin/bash\nexit 0\n"
#: bash's own clock ($EPOCHREALTIME), so recording the start costs no extra process
CANARY_SCRIPT = '#!/bin/bash\nLC_ALL=C\nprintf \'%s %s\\n\' "$1" "$EPOCHREALTIME" >> "$2"\n'


@dataclass(frozen=True, slots=True)
class Scripts:
    noop: Path
    canary: Path
    canary_log: Path


@dataclass(slots=True)
class Canary:
    job_id: str
    due: float
    phase: str
    phase_end: float = 0.0
    fired: float | None = None
    #: when the scheduler says it started the run (cronwell's execution history has it;
    #: the peer keeps none), to split lateness into the engine's and the process start's
    engine_started: float | None = None

    @property
    def lateness(self) -> float | None:
        return None if self.fired is None else self.fired - self.due


@dataclass(slots=True)
class SystemRun:
    system: str
    phases: dict[str, PhaseResult]
    canaries: list[Canary]

    def results(self) -> list[dict[str, Any]]:
        rows = []
        for endpoint, phase in self.phases.items():
            summary = LatencySummary.of_seconds(phase.latencies)
            rows.append(
                {
                    "system": self.system,
                    "endpoint": endpoint,
                    "requests_per_s": phase.requests_per_s,
                    "p50_ms": summary.p50_ms,
                    "p99_ms": summary.p99_ms,
                    "errors": phase.errors,
                }
            )
        return rows


def write_scripts(root: Path, log_dir: Path) -> Scripts:
    root.mkdir(parents=True)
    noop, canary = root / "noop.sh", root / "canary.sh"
    noop.write_text(NOOP_SCRIPT)
    canary.write_text(CANARY_SCRIPT)
    for script in (noop, canary):
        script.chmod(0o755)
    return Scripts(noop, canary, log_dir / "canary.log")


def schedule_request(job_id: str, script: Path, run_date: str, args: Sequence[str] = ()) -> Request:
    return post_json(
        "/api/schedule-job",
        {
            "job_id": job_id,
            "job_type": "bash",
            "script_path": str(script),
            "run_date": run_date,
            "args": list(args),
        },
    )


def future_date(days: int = 1) -> str:
    """A naive ISO run_date (the seed's format; both systems read it as UTC)."""
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


def split(requests: list[Request], clients: int) -> list[list[Request]]:
    return [requests[i::clients] for i in range(clients)]


def phase_plans(
    counts: dict[str, int], scripts: Scripts, system: str
) -> dict[str, list[list[Request]]]:
    """Every client's requests per endpoint, built before the clock starts."""
    run_date = future_date()
    return {
        "list-jobs": [[Request("GET", "/api/jobs")] * counts["list-jobs"] for _ in range(CLIENTS)],
        "get-job": [
            [
                Request("GET", f"/api/job/seed-{(c * 7919 + k) % SEEDED_JOBS}")
                for k in range(counts["get-job"])
            ]
            for c in range(CLIENTS)
        ],
        "schedule-job": [
            [
                schedule_request(f"load-{system}-{c}-{k}", scripts.noop, run_date)
                for k in range(counts["schedule-job"])
            ]
            for c in range(CLIENTS)
        ],
        SERIAL: [
            [Request("GET", f"/api/job/seed-{k % SEEDED_JOBS}") for k in range(counts[SERIAL])]
        ],
    }


def seed(server: Server, scripts: Scripts) -> None:
    run_date = future_date()
    requests = [
        server.signed(schedule_request(f"seed-{i}", scripts.noop, run_date))
        for i in range(SEEDED_JOBS)
    ]
    result = run_phase(server.host, server.port, split(requests, SEED_CLIENTS))
    if result.errors:
        raise RuntimeError(
            f"{server.name}: seeding failed {result.errors} times: {result.first_error}"
        )


def schedule_canaries(server: Server, scripts: Scripts, phase: str) -> list[Canary]:
    canaries = []
    base = time.time()
    for k, offset in enumerate(CANARY_OFFSETS):
        canary = Canary(f"canary-{phase}-{k}", base + offset, phase)
        run_date = datetime.fromtimestamp(canary.due, UTC).isoformat()
        status, body = call(
            server.host,
            server.port,
            server.signed(
                schedule_request(
                    canary.job_id,
                    scripts.canary,
                    run_date,
                    [canary.job_id, str(scripts.canary_log)],
                )
            ),
        )
        if status != 200:
            raise RuntimeError(f"{server.name}: canary {canary.job_id} refused: {status} {body}")
        canaries.append(canary)
    return canaries


def collect_canaries(canaries: list[Canary], log: Path) -> None:
    """Wait (bounded) until every canary has written its start time, then read them."""
    deadline = max(c.due for c in canaries) + CANARY_WAIT
    while True:
        fired: dict[str, float] = {}
        if log.exists():
            for line in log.read_text().splitlines():
                job_id, _, stamp = line.partition(" ")
                fired[job_id] = float(stamp.replace(",", "."))
        if all(c.job_id in fired for c in canaries) or time.time() > deadline:
            break
        time.sleep(0.1)
    for canary in canaries:
        canary.fired = fired.get(canary.job_id)


def read_engine_starts(server: Server, canaries: list[Canary]) -> None:
    """Fill in `engine_started` from the scheduler surface's execution history, where
    the server has one (the peer answers 404 and keeps None)."""
    for canary in canaries:
        status, body = call(
            server.host,
            server.port,
            server.signed(Request("GET", f"/api/scheduler/executions?job_id={canary.job_id}")),
        )
        records = body.get("data") if status == 200 and isinstance(body, dict) else None
        if records and records[0].get("started_at"):
            canary.engine_started = datetime.fromisoformat(records[0]["started_at"]).timestamp()


def measure_system(
    name: str,
    serving: AbstractContextManager[Server],
    scripts: Scripts,
    counts: dict[str, int],
    log: Callable[[str], None],
) -> SystemRun:
    with serving as server:
        log(f"{name}: seeding {SEEDED_JOBS} jobs")
        seed(server, scripts)
        phases: dict[str, PhaseResult] = {}
        canaries: list[Canary] = []
        for endpoint, unsigned in phase_plans(counts, scripts, name).items():
            plans = [[server.signed(r) for r in plan] for plan in unsigned]
            log(f"{name}: {endpoint}, {len(plans)} clients x {len(plans[0])} requests")
            phase_canaries = schedule_canaries(server, scripts, f"{name}-{endpoint}")
            phases[endpoint] = run_phase(server.host, server.port, plans)
            ended = time.time()
            for canary in phase_canaries:
                canary.phase_end = ended
            canaries.extend(phase_canaries)
        collect_canaries(canaries, scripts.canary_log)
        read_engine_starts(server, canaries)
    return SystemRun(name, phases, canaries)


def systems(
    workdir: Path, scripts: Scripts, key_cache: float | None = None
) -> Iterator[tuple[str, AbstractContextManager[Server]]]:
    yield "cronwell", cronwell_server(workdir / "cronwell", scripts.noop.parent, POOL_SIZE)
    keyed = keyed_cronwell_server(workdir / "cronwell-key", scripts.noop.parent, POOL_SIZE)
    yield KEYED, keyed
    if key_cache is not None:
        cached = keyed_cronwell_server(
            workdir / "cronwell-key-cached",
            scripts.noop.parent,
            POOL_SIZE,
            name=CACHED,
            CRONWELL_KEY_CACHE_SECONDS=str(key_cache),
        )
        yield CACHED, cached
    yield "flask-apscheduler", peer_server(workdir / "peer", POOL_SIZE)


def canary_lines(runs: Sequence[SystemRun]) -> list[str]:
    lines = []
    for run in runs:
        for c in run.canaries:
            late = c.lateness
            when = "never fired" if late is None else f"{late * 1000:8.1f} ms late"
            load = (
                ""
                if c.fired is None
                else (" (under load)" if c.fired <= c.phase_end else " (after its phase ended)")
            )
            split = ""
            if c.engine_started is not None and c.fired is not None:
                split = f"; engine started it {(c.engine_started - c.due) * 1000:.1f} ms late, bash ran {(c.fired - c.engine_started) * 1000:.1f} ms later"
            lines.append(f"{run.system:<18} {c.phase:<32} {when}{load}{split}")
    return lines


def summarise(runs: Sequence[SystemRun]) -> list[dict[str, Any]]:
    """One row per (system, endpoint): medians over the rounds, errors summed."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        for r in run.results():
            grouped.setdefault((r["system"], r["endpoint"]), []).append(r)
    return [
        {
            "system": system,
            "endpoint": endpoint,
            **{
                key: median_or_none(r[key] for r in rows)
                for key in ("requests_per_s", "p50_ms", "p99_ms")
            },
            "errors": sum(r["errors"] for r in rows),
        }
        for (system, endpoint), rows in grouped.items()
    ]


def table(runs: Sequence[SystemRun]) -> str:
    headers = [
        "system",
        "endpoint",
        "rounds",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "requests/s spread",
    ]
    rows = []
    for r in summarise(runs):
        rates = [
            run.phases[r["endpoint"]].requests_per_s
            for run in runs
            if run.system == r["system"] and r["endpoint"] in run.phases
        ]
        low_high = spread(rates)
        rows.append(
            [
                r["system"],
                r["endpoint"],
                str(len(rates)),
                fmt(r["requests_per_s"]),
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                fmt(r["errors"]),
                "-" if low_high is None else f"{fmt(low_high[0])} .. {fmt(low_high[1])}",
            ]
        )
    return render_table(headers, rows)


def target_lines(runs: Sequence[SystemRun]) -> list[str]:
    by = {(r["system"], r["endpoint"]): r for r in summarise(runs)}
    ours, peer = by.get(("cronwell", "schedule-job")), by.get(("flask-apscheduler", "schedule-job"))
    faster = ratio(
        ours["requests_per_s"] if ours else None, peer["requests_per_s"] if peer else None
    )
    p99 = ours["p99_ms"] if ours else None
    errors = sum(r["errors"] for (system, _), r in by.items() if system == "cronwell")
    lateness = [c.lateness for run in runs if run.system == "cronwell" for c in run.canaries]
    on_time = bool(lateness) and all(
        late is not None and late <= ON_TIME_SECONDS for late in lateness
    )
    worst = max((late for late in lateness if late is not None), default=None)
    return [
        f"schedule-job throughput >= {THROUGHPUT_TARGET:g}x the peer's: {fmt(faster)}x  {verdict(None if faster is None else faster >= THROUGHPUT_TARGET)}",
        f"schedule-job p99 under {P99_TARGET_MS:g} ms: {fmt(p99, 2)} ms  {verdict(None if p99 is None else p99 < P99_TARGET_MS)}",
        f"zero errors (every cronwell endpoint): {errors}  {verdict(errors == 0 if by else None)}",
        (
            f"canaries fire on time (within {ON_TIME_SECONDS * 1000:g} ms): worst "
            f"{fmt(None if worst is None else worst * 1000, 1)} ms  {verdict(on_time if lateness else None)}"
        ),
    ]


def key_check_seconds(folder: Path, checks: int = KEY_CHECKS) -> float:
    """Median seconds of one key check in process, on a SQLite store holding the key:
    what the middleware does per request (header parse, SHA-256, key lookup, user
    lookup), without HTTP around it."""
    from api.auth import Authenticator
    from api.keys import make_key
    from stores.records import User
    from stores.sqlite import SqliteStore

    store = SqliteStore(folder / "keys.db")
    store.open()
    try:
        now = datetime.now(UTC)
        store.add_user(User(id="b" * 24, name="Bench", email="b@example.com", role="admin"))
        _, key = make_key(store, "b" * 24, "bench", now)
        authenticator = Authenticator(store, (), lambda: now)
        headers = {"authorization": f"Bearer {key}"}
        timings = []
        for _ in range(checks):
            began = time.perf_counter()
            authenticator.authenticate(headers, "127.0.0.1")
            timings.append(time.perf_counter() - began)
    finally:
        store.close()
    timings.sort()
    return timings[len(timings) // 2]


def key_cost_lines(runs: Sequence[SystemRun], check_seconds: float | None) -> list[str]:
    """The cost of a key, two ways: the end-to-end throughput of the keyed server
    against the open one (same run, same rounds), and the in-process check time as a
    share of the open server's time per request (1 / requests per second: one process
    serves them one after another)."""
    by = {(r["system"], r["endpoint"]): r for r in summarise(runs)}
    lines = []
    if check_seconds is not None:
        lines.append(f"one key check in process: {check_seconds * 1e6:.1f} us (median)")
    open_serial = by.get(("cronwell", SERIAL))
    for system, what in ((KEYED, "with a key"), (CACHED, "with a cached key")):
        keyed_serial = by.get((system, SERIAL))
        if open_serial and keyed_serial and open_serial["p50_ms"]:
            extra = keyed_serial["p50_ms"] / open_serial["p50_ms"] - 1
            lines.append(
                f"{SERIAL} p50: {fmt(open_serial['p50_ms'], 3)} ms open, "
                f"{fmt(keyed_serial['p50_ms'], 3)} ms {what} ({extra * 100:+.1f}%) "
                f"under {KEY_COST_TARGET * 100:g}%  {verdict(extra < KEY_COST_TARGET)}"
            )
    for endpoint in KEYED_ENDPOINTS:
        open_row, keyed_row = by.get(("cronwell", endpoint)), by.get((KEYED, endpoint))
        if not open_row or not keyed_row or not open_row["requests_per_s"]:
            lines.append(f"{endpoint}: n/a")
            continue
        drop = 1 - keyed_row["requests_per_s"] / open_row["requests_per_s"]
        lines.append(
            f"{endpoint}: {fmt(open_row['requests_per_s'])} req/s open, "
            f"{fmt(keyed_row['requests_per_s'])} with a key ({drop * 100:+.1f}% throughput "
            f"lost); p50 {fmt(open_row['p50_ms'], 2)} vs {fmt(keyed_row['p50_ms'], 2)} ms"
        )
        if check_seconds is not None:
            share = check_seconds * open_row["requests_per_s"]
            lines.append(
                f"  key check = {share * 100:.2f}% of a {endpoint} request's server time "
                f"({1e6 / open_row['requests_per_s']:.0f} us) under {KEY_COST_TARGET * 100:g}%  "
                f"{verdict(share < KEY_COST_TARGET)}"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests per client, one round")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--key-cache",
        type=float,
        metavar="SECONDS",
        help=f"also measure {CACHED}: the keyed server with CRONWELL_KEY_CACHE_SECONDS",
    )
    args = parser.parse_args(argv)
    counts = QUICK_REQUESTS if args.quick else FULL_REQUESTS
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    runs: list[SystemRun] = []
    with tempfile.TemporaryDirectory(prefix="cronwell-bench-api-") as tmp:
        for number in range(1, rounds + 1):
            workdir = Path(tmp) / f"round-{number}"
            scripts = write_scripts(workdir / "scripts", workdir)
            for name, serving in systems(workdir, scripts, args.key_cache):
                log(f"round {number}/{rounds}")
                runs.append(measure_system(name, serving, scripts, counts, log))
    print(table(runs))
    print(
        f"\n{rounds} round(s), fresh servers each, systems alternating; medians shown. cronwell = Sanic, "
        f"single process; peer = werkzeug run_simple(threaded=True); {CLIENTS} http.client keep-alive "
        f"clients, each sending {', '.join(f'{n} {e}' for e, n in counts.items() if e != SERIAL)}; "
        f"then {SERIAL}: one client, {counts[SERIAL]} requests"
    )
    first_errors = [
        f"{run.system} {e}: {p.first_error}"
        for run in runs
        for e, p in run.phases.items()
        if p.first_error
    ]
    for line in first_errors:
        print(f"first error: {line}")
    print("\ncanaries (a job due during each phase; start - due):")
    for line in canary_lines(runs):
        print(f"  {line}")
    print("\ntargets (cronwell against the peer, this run):")
    for line in target_lines(runs):
        print(f"  {line}")
    with tempfile.TemporaryDirectory(prefix="cronwell-bench-keys-") as tmp:
        check = key_check_seconds(Path(tmp))
    print(f"\ncost of checking a key ({KEYED}: every request carries a stored key):")
    for line in key_cost_lines(runs, check):
        print(f"  {line}")
    print(json_line("api", summarise(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
