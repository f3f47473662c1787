"""API benchmark: cronwell's API against Flask + APScheduler 3.11 (the stack the
scripts seed describes), both on SQLite, in one run.

    python -m bench.api [--quick] [--rounds N] [--key-cache SECONDS]

Each round starts fresh servers on free loopback ports: cronwell open (`cronwell`) and
cronwell closed by a stored admin key that every request carries (`cronwell-key`),
side by side, then the peer (`bench.peers.flask_apscheduler`: werkzeug threaded,
SQLAlchemyJobStore on a SQLite file); the order of cronwell and the peer swaps each
round. Each server gets 1,000 jobs through its API, then:

- closed loop: 32 keep-alive clients each send a fixed number of requests to one
  endpoint (list jobs on the scripts surface, list jobs on the scheduler surface, get
  job, schedule-job with unique ids). At the start of each phase two canary jobs are
  scheduled to fire during it; a canary script records when bash started, and the
  report shows how late each one was;
- open loop (cronwell and cronwell-key taking turns step by step, then the peer):
  schedule-job and get-job sent at 100, 200 and 400 requests/s by `bench.open_loop` in
  a process of its own, latency from each request's due time, with the rate the
  generator achieved;
- key A/B (cronwell against cronwell-key): one client, blocks of get-job and of
  schedule-job sent to the two servers in turn (bench/api_open.py).

Last line: `{"bench": "api", "results": [{"system", "endpoint", "requests_per_s",
"p50_ms", "p99_ms", "errors"}]}` (open-loop steps as `open-<endpoint>-<rate>`, with
the answer rate as requests_per_s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench.api_open import FULL_SECONDS as OPEN_FULL_SECONDS
from bench.api_open import OPEN_ENDPOINTS, RATES, OpenRow, alternate, grid
from bench.api_open import QUICK_SECONDS as OPEN_QUICK_SECONDS
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
SEEDED_JOBS = 1000
SEED_CLIENTS = 8
POOL_SIZE = 10
LISTS = {"list-jobs": "/api/jobs", "list-scheduler-jobs": "/api/scheduler/jobs"}
#: requests each client sends per closed-loop endpoint (a list is 1,000+ jobs: fewer)
FULL_REQUESTS = {"list-jobs": 10, "list-scheduler-jobs": 10, "get-job": 150, "schedule-job": 100}
QUICK_REQUESTS = {"list-jobs": 4, "list-scheduler-jobs": 4, "get-job": 40, "schedule-job": 25}
#: one client, request after request, per endpoint: a request's own cost without the
#: queueing of 32 clients on two cores (the key A/B)
SERIAL = {"get-job": "get-job-1-client", "schedule-job": "schedule-job-1-client"}
FULL_BLOCK = 500
QUICK_BLOCK = 150
#: rounds of every system, each on fresh servers (medians reported)
FULL_ROUNDS = 3
QUICK_ROUNDS = 1
#: seconds after a phase starts at which its canaries are due
CANARY_OFFSETS = (0.3, 0.6)
#: a canary whose bash starts later than this after its due time was not on time
ON_TIME_SECONDS = 0.010
CANARY_WAIT = 15.0
LIST_TARGET = 15.0
THROUGHPUT_TARGET = 5.0
#: open-loop p99 at the top rate
P99_TARGET_MS = 20.0
#: the generator counts as keeping up when it sends within 2% of the offered rate
SEND_RATE_SLACK = 0.02
KEYED = "cronwell-key"
PEER = "flask-apscheduler"
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

    @property
    def engine_lateness(self) -> float | None:
        return None if self.engine_started is None else self.engine_started - self.due


@dataclass(slots=True)
class SystemRun:
    system: str
    phases: dict[str, PhaseResult]
    canaries: list[Canary]
    open_rows: list[OpenRow] = field(default_factory=list)
    round: int = 1
    #: the keyed server's: per one-client endpoint, its p50 over the open server's
    #: minus 1, one per alternation (two blocks sent one right after the other)
    key_extras: dict[str, list[float]] = field(default_factory=dict)

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
        rows.extend(
            {
                "system": self.system,
                "endpoint": f"open-{o.endpoint}-{o.rate}",
                "requests_per_s": o.answer_rate,
                "p50_ms": o.p50_ms,
                "p99_ms": o.p99_ms,
                "errors": o.errors,
            }
            for o in self.open_rows
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
    """Every client's requests per closed-loop endpoint, built before the clock starts."""
    run_date = future_date()
    plans: dict[str, list[list[Request]]] = {
        name: [[Request("GET", path)] * counts[name] for _ in range(CLIENTS)]
        for name, path in LISTS.items()
    }
    plans["get-job"] = [
        [
            Request("GET", f"/api/job/seed-{(c * 7919 + k) % SEEDED_JOBS}")
            for k in range(counts["get-job"])
        ]
        for c in range(CLIENTS)
    ]
    plans["schedule-job"] = [
        [
            schedule_request(f"load-{system}-{c}-{k}", scripts.noop, run_date)
            for k in range(counts["schedule-job"])
        ]
        for c in range(CLIENTS)
    ]
    return plans


def one_request(endpoint: str, job_id: str, k: int, scripts: Scripts) -> Request:
    """Request k of an endpoint's serial or open-loop plan; `job_id` names a new job."""
    if endpoint == "get-job":
        return Request("GET", f"/api/job/seed-{(k * 7919) % SEEDED_JOBS}")
    return schedule_request(job_id, scripts.noop, future_date())


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


def closed_loop(
    server: Server, scripts: Scripts, counts: dict[str, int], log: Callable[[str], None]
) -> SystemRun:
    """The closed-loop phases on a seeded server, each with its canaries."""
    phases: dict[str, PhaseResult] = {}
    canaries: list[Canary] = []
    for endpoint, unsigned in phase_plans(counts, scripts, server.name).items():
        plans = [[server.signed(r) for r in plan] for plan in unsigned]
        log(f"{server.name}: {endpoint}, {len(plans)} clients x {len(plans[0])} requests")
        phase_canaries = schedule_canaries(server, scripts, f"{server.name}-{endpoint}")
        phases[endpoint] = run_phase(server.host, server.port, plans)
        ended = time.time()
        for canary in phase_canaries:
            canary.phase_end = ended
        canaries.extend(phase_canaries)
    return SystemRun(server.name, phases, canaries)


def open_plans(scripts: Scripts) -> Callable[[Server, str, int, int], list[Request]]:
    def plans(server: Server, endpoint: str, rate: int, count: int) -> list[Request]:
        return [
            one_request(endpoint, f"open-{server.name}-{rate}-{k}", k, scripts)
            for k in range(count)
        ]

    return plans


def finish(server: Server, run: SystemRun, scripts: Scripts) -> SystemRun:
    collect_canaries(run.canaries, scripts.canary_log)
    read_engine_starts(server, run.canaries)
    return run


def cronwell_round(
    workdir: Path,
    scripts: Scripts,
    settings: dict[str, str],
    sizes: tuple[dict[str, int], int, float],
    log: Callable[[str], None],
) -> list[SystemRun]:
    """Open and keyed cronwell side by side: closed loop, the key A/B, open loop."""
    counts, block, seconds = sizes
    root = scripts.noop.parent
    with (
        cronwell_server(workdir / "cronwell", root, POOL_SIZE, **settings) as plain,
        keyed_cronwell_server(workdir / KEYED, root, POOL_SIZE, **settings) as keyed,
    ):
        servers = (plain, keyed)
        for server in servers:
            log(f"{server.name}: seeding {SEEDED_JOBS} jobs")
            seed(server, scripts)
        runs = {s.name: closed_loop(s, scripts, counts, log) for s in servers}
        for endpoint, name in SERIAL.items():
            log(f"key A/B: {name}, {block} requests a block")

            def plan(server: Server, number: int, endpoint: str = endpoint) -> list[Request]:
                return [
                    server.signed(
                        one_request(endpoint, f"serial-{server.name}-{number}-{k}", k, scripts)
                    )
                    for k in range(block)
                ]

            alternated = alternate(servers, plan)
            for system, result in alternated.merged.items():
                runs[system].phases[name] = result
            runs[KEYED].key_extras[name] = [
                b[KEYED] / b["cronwell"] - 1 for b in alternated.block_p50s
            ]
        for row in grid(servers, open_plans(scripts), seconds, log):
            runs[row.system].open_rows.append(row)
        return [finish(s, runs[s.name], scripts) for s in servers]


def peer_round(
    workdir: Path,
    scripts: Scripts,
    sizes: tuple[dict[str, int], int, float],
    log: Callable[[str], None],
) -> list[SystemRun]:
    counts, _, seconds = sizes
    with peer_server(workdir / "peer", POOL_SIZE) as server:
        log(f"{server.name}: seeding {SEEDED_JOBS} jobs")
        seed(server, scripts)
        run = closed_loop(server, scripts, counts, log)
        run.open_rows = grid([server], open_plans(scripts), seconds, log)
        return [finish(server, run, scripts)]


# -- the report ---------------------------------------------------------------------------
def by_round(runs: Sequence[SystemRun]) -> dict[int, dict[str, SystemRun]]:
    rounds: dict[int, dict[str, SystemRun]] = {}
    for run in runs:
        rounds.setdefault(run.round, {})[run.system] = run
    return rounds


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
    """The closed-loop and one-client phases."""
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
        if r["endpoint"].startswith("open-"):
            continue
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
                fmt(r["p50_ms"], 3 if r["endpoint"] in SERIAL.values() else 2),
                fmt(r["p99_ms"]),
                fmt(r["errors"]),
                "-" if low_high is None else f"{fmt(low_high[0])} .. {fmt(low_high[1])}",
            ]
        )
    return render_table(headers, rows)


def round_ratios(runs: Sequence[SystemRun], system: str, endpoint: str) -> list[float]:
    """cronwell's requests/s over the peer's, per round (same run, same moment)."""
    found = []
    for systems in by_round(runs).values():
        ours, peer = systems.get(system), systems.get(PEER)
        if ours and peer and endpoint in ours.phases and endpoint in peer.phases:
            value = ratio(
                ours.phases[endpoint].requests_per_s, peer.phases[endpoint].requests_per_s
            )
            if value is not None:
                found.append(value)
    return found


def list_lines(runs: Sequence[SystemRun]) -> list[str]:
    lines = []
    for system in ("cronwell", KEYED):
        for endpoint in LISTS:
            ratios = round_ratios(runs, system, endpoint)
            middle = median_or_none(ratios)
            shown = ", ".join(f"{r:.1f}x" for r in ratios) or "-"
            lines.append(
                f"{system} {endpoint} (1,000+ jobs) >= {LIST_TARGET:g}x the peer's requests/s: "
                f"median {fmt(middle, 1)}x (rounds: {shown})  "
                f"{verdict(None if middle is None else middle >= LIST_TARGET)}"
            )
    return lines


def canary_table(runs: Sequence[SystemRun]) -> str:
    """Worst lateness per system and phase over the rounds: bash's start, and the
    engine's own start where the server records one."""
    worst: dict[tuple[str, str], list[Canary]] = {}
    for run in runs:
        for c in run.canaries:
            phase = c.phase.removeprefix(f"{run.system}-")
            worst.setdefault((run.system, phase), []).append(c)
    rows = []
    for (system, phase), canaries in worst.items():
        late = [c.lateness for c in canaries]
        engine = [c.engine_lateness for c in canaries if c.engine_lateness is not None]
        fired = [x for x in late if x is not None]
        under = sum(1 for c in canaries if c.fired is not None and c.fired <= c.phase_end)
        rows.append(
            [
                system,
                phase,
                f"{len(fired)}/{len(canaries)}",
                f"{under}",
                fmt(max(fired) * 1000 if fired else None, 1),
                fmt(statistics.median(fired) * 1000 if fired else None, 1),
                fmt(max(engine) * 1000 if engine else None, 1),
            ]
        )
    headers = ["system", "phase", "fired", "under load", "worst ms", "median ms", "engine worst ms"]
    return render_table(headers, rows)


def open_table(runs: Sequence[SystemRun]) -> str:
    grouped: dict[tuple[str, str, int], list[OpenRow]] = {}
    for run in runs:
        for o in run.open_rows:
            grouped.setdefault((o.system, o.endpoint, o.rate), []).append(o)
    headers = [
        "system", "endpoint", "offered/s", "rounds", "sent/s", "send lag p99 ms",
        "answered/s", "p50 ms", "p99 ms", "errors", "waited", "kept up",
    ]  # fmt: skip
    rows = []
    for (system, endpoint, rate), steps in grouped.items():
        rows.append(
            [
                system,
                endpoint,
                str(rate),
                str(len(steps)),
                fmt(median_or_none(s.send_rate for s in steps), 1),
                fmt(median_or_none(s.send_lag_p99_ms for s in steps), 2),
                fmt(median_or_none(s.answer_rate for s in steps), 1),
                fmt(median_or_none(s.p50_ms for s in steps), 2),
                fmt(median_or_none(s.p99_ms for s in steps), 2),
                str(sum(s.errors for s in steps)),
                str(sum(s.waited for s in steps)),
                f"{sum(s.kept_up for s in steps)}/{len(steps)}",
            ]
        )
    return render_table(headers, rows)


def open_lines(runs: Sequence[SystemRun]) -> list[str]:
    steps = [o for run in runs for o in run.open_rows]
    lines = []
    top = max(RATES)
    for endpoint in OPEN_ENDPOINTS:
        for system in ("cronwell", KEYED):
            p99 = median_or_none(
                o.p99_ms for o in steps if (o.system, o.endpoint, o.rate) == (system, endpoint, top)
            )
            lines.append(
                f"{system} {endpoint} open-loop p99 at {top}/s under {P99_TARGET_MS:g} ms: "
                f"{fmt(p99, 2)} ms  {verdict(None if p99 is None else p99 < P99_TARGET_MS)}"
            )
        peer = [o for o in steps if (o.system, o.endpoint, o.rate) == (PEER, endpoint, top)]
        kept = sum(o.kept_up for o in peer)
        answered = median_or_none(o.answer_rate for o in peer)
        lines.append(
            f"the peer's {endpoint} at {top}/s: kept up in {kept} of {len(peer)} rounds "
            f"(answered {fmt(answered, 1)}/s, p99 "
            f"{fmt(median_or_none(o.p99_ms for o in peer), 0)} ms)"
        )
    slow = [o for o in steps if not o.send_rate or o.send_rate < o.rate * (1 - SEND_RATE_SLACK)]
    worst_lag = max((o.send_lag_p99_ms or 0.0 for o in steps), default=None)
    lines.append(
        f"the generator sent every step within {SEND_RATE_SLACK * 100:g}% of its rate: "
        f"{len(steps) - len(slow)}/{len(steps)} steps (worst send lag p99 {fmt(worst_lag, 2)} ms)  "
        f"{verdict(not slow if steps else None)}"
    )
    lines.extend(
        f"  behind: {o.system} {o.endpoint} at {o.rate}/s sent {fmt(o.send_rate, 1)}/s"
        for o in slow
    )
    return lines


def target_lines(runs: Sequence[SystemRun]) -> list[str]:
    by = {(r["system"], r["endpoint"]): r for r in summarise(runs)}
    ours, peer = by.get(("cronwell", "schedule-job")), by.get((PEER, "schedule-job"))
    faster = ratio(
        ours["requests_per_s"] if ours else None, peer["requests_per_s"] if peer else None
    )
    errors = sum(r["errors"] for (system, _), r in by.items() if system != PEER)
    lateness = [c.lateness for run in runs if run.system != PEER for c in run.canaries]
    on_time = bool(lateness) and all(
        late is not None and late <= ON_TIME_SECONDS for late in lateness
    )
    worst = max((late for late in lateness if late is not None), default=None)
    return [
        (
            f"schedule-job closed-loop throughput >= {THROUGHPUT_TARGET:g}x the peer's: "
            f"{fmt(faster)}x  {verdict(None if faster is None else faster >= THROUGHPUT_TARGET)}"
        ),
        f"zero errors (every cronwell endpoint, both modes): {errors}  {verdict(errors == 0 if by else None)}",
        (
            f"canaries start on time (bash within {ON_TIME_SECONDS * 1000:g} ms, every cronwell "
            f"phase): worst {fmt(None if worst is None else worst * 1000, 1)} ms  "
            f"{verdict(on_time if lateness else None)}"
        ),
    ]


def key_check_seconds(folder: Path, checks: int = KEY_CHECKS) -> tuple[float, float]:
    """Median seconds of one key check in process, on a SQLite store holding the key:
    the store path (header parse, SHA-256, key lookup joined with its user) and the
    remembered path the middleware takes on the event loop, without HTTP around them."""
    from sanic.compat import Header

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
        # Sanic's own header map, as the middleware gets it (a case-insensitive
        # multidict: a lookup in it costs several times a dict's)
        headers = Header([("host", "127.0.0.1"), ("authorization", f"Bearer {key}")])
        strict = Authenticator(store, (), lambda: now, cache_seconds=0)
        remembering = Authenticator(store, (), lambda: now, cache_seconds=3600)
        remembering.authenticate(headers, "127.0.0.1")
        medians = []
        checks_made: tuple[Callable[[], object], ...] = (
            lambda: strict.authenticate(headers, "127.0.0.1"),
            lambda: remembering.remembered(headers, lambda: "127.0.0.1"),
        )
        for check in checks_made:
            timings = []
            for _ in range(checks):
                began = time.perf_counter()
                check()
                timings.append(time.perf_counter() - began)
            medians.append(statistics.median(timings))
    finally:
        store.close()
    return medians[0], medians[1]


def key_cost_rows(runs: Sequence[SystemRun]) -> list[tuple[str, list[float]]]:
    """Per one-client endpoint, the keyed p50 over the open one, minus 1, for every
    alternation of every round."""
    return [
        (
            endpoint,
            [e for run in runs if run.system == KEYED for e in run.key_extras.get(endpoint, [])],
        )
        for endpoint in SERIAL.values()
    ]


def key_cost_lines(runs: Sequence[SystemRun], checks: tuple[float, float] | None) -> list[str]:
    lines = []
    if checks is not None:
        lines.append(
            f"one key check in process: {checks[0] * 1e6:.1f} us reading the store, "
            f"{checks[1] * 1e6:.1f} us remembered (on the event loop); medians of {KEY_CHECKS}"
        )
    by = {(r["system"], r["endpoint"]): r for r in summarise(runs)}
    for endpoint, extras in key_cost_rows(runs):
        plain, keyed = by.get(("cronwell", endpoint)), by.get((KEYED, endpoint))
        middle = median_or_none(extras)
        low_high = spread(extras)
        shown = (
            "-" if low_high is None else f"{low_high[0] * 100:+.1f}% .. {low_high[1] * 100:+.1f}%"
        )
        lines.append(
            f"{endpoint} p50 {fmt(plain['p50_ms'] if plain else None, 3)} ms open, "
            f"{fmt(keyed['p50_ms'] if keyed else None, 3)} ms with a key; per block pair "
            f"median {fmt(None if middle is None else middle * 100, 1)}% over {len(extras)} pairs "
            f"({shown}) under "
            f"{KEY_COST_TARGET * 100:g}%  {verdict(None if middle is None else middle < KEY_COST_TARGET)}"
        )
    steps = [o for run in runs for o in run.open_rows]
    for endpoint in OPEN_ENDPOINTS:
        for rate in RATES:
            a = median_or_none(
                o.p50_ms
                for o in steps
                if (o.system, o.endpoint, o.rate) == ("cronwell", endpoint, rate)
            )
            b = median_or_none(
                o.p50_ms for o in steps if (o.system, o.endpoint, o.rate) == (KEYED, endpoint, rate)
            )
            extra = ratio(b, a)
            lines.append(
                f"open loop {endpoint} at {rate}/s: p50 {fmt(a, 3)} ms open, {fmt(b, 3)} ms with a key"
                f" ({'-' if extra is None else f'{(extra - 1) * 100:+.1f}%'})"
            )
    return lines


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer requests, shorter steps, one round"
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--key-cache",
        type=float,
        metavar="SECONDS",
        help="CRONWELL_KEY_CACHE_SECONDS for both cronwell servers (default: the service's, 1 s; "
        "0 reads the store for every key)",
    )
    args = parser.parse_args(argv)
    counts = QUICK_REQUESTS if args.quick else FULL_REQUESTS
    sizes = (
        counts,
        QUICK_BLOCK if args.quick else FULL_BLOCK,
        OPEN_QUICK_SECONDS if args.quick else OPEN_FULL_SECONDS,
    )
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    settings = {} if args.key_cache is None else {"CRONWELL_KEY_CACHE_SECONDS": str(args.key_cache)}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    runs: list[SystemRun] = []
    loads = [load_line()]
    with tempfile.TemporaryDirectory(prefix="cronwell-bench-api-") as tmp:
        for number in range(1, rounds + 1):
            workdir = Path(tmp) / f"round-{number}"
            scripts = write_scripts(workdir / "scripts", workdir)
            steps: list[Callable[[], list[SystemRun]]] = [
                partial(cronwell_round, workdir, scripts, settings, sizes, log),
                partial(peer_round, workdir, scripts, sizes, log),
            ]
            if number % 2 == 0:
                steps.reverse()
            for step in steps:
                log(f"round {number}/{rounds}")
                for run in step():
                    run.round = number
                    runs.append(run)
            loads.append(load_line())
    print(table(runs))
    print(
        f"\n{rounds} round(s), fresh servers each, cronwell and the peer alternating; medians "
        f"shown. cronwell = Sanic, single process; peer = werkzeug run_simple(threaded=True); "
        f"{CLIENTS} http.client keep-alive clients, each sending "
        f"{', '.join(f'{n} {e}' for e, n in counts.items())}; then one client, "
        f"{sizes[1]}-request blocks alternating between cronwell and {KEYED} 8 times."
    )
    print(
        "machine: "
        + "; ".join(loads[:1] + [f"after round {i}: {x}" for i, x in enumerate(loads[1:], 1)])
    )
    for run in runs:
        for e, p in run.phases.items():
            if p.first_error:
                print(f"first error: {run.system} {e}: {p.first_error}")
        for o in run.open_rows:
            if o.first_error:
                print(f"first error: {run.system} open {o.endpoint} at {o.rate}/s: {o.first_error}")
    print("\nlists against the peer (per-round ratios, same run):")
    for line in list_lines(runs):
        print(f"  {line}")
    print(
        "\ncanaries (two jobs due during each closed-loop phase; bash start - due, over the rounds):"
    )
    print(canary_table(runs))
    print(
        f"\nopen loop ({sizes[2]:g} s per step, latency from each request's due time; send lag: "
        "due to taken up by the generator; waited: requests that found all of the generator's "
        "100 connections busy):"
    )
    print(open_table(runs))
    for line in open_lines(runs):
        print(f"  {line}")
    print("\ntargets (cronwell against the peer, this run):")
    for line in target_lines(runs):
        print(f"  {line}")
    with tempfile.TemporaryDirectory(prefix="cronwell-bench-keys-") as tmp:
        checks = key_check_seconds(Path(tmp))
    print(f"\ncost of checking a key ({KEYED}: every request carries a stored key):")
    for line in key_cost_lines(runs, checks):
        print(f"  {line}")
    print(json_line("api", summarise(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
