"""Dispatch benchmark: cronwell's engine against APScheduler 3.11 and a bare-wait floor.

    python -m bench.dispatch [--quick]

Every (system, workload, repetition) runs in a fresh child interpreter, systems taking
turns within each repetition, so no system inherits another's heap, threads or caches.
Prints a table of medians (with the spread over repetitions, and the process CPU time
per job, which other load on a shared machine barely moves), the issue's target ratios
with PASS/MISS, and as its last line one JSON object:
`{"bench": "dispatch", "results": [{"system", "workload", "p50_ms", "p99_ms", "max_ms",
"jobs_per_s", "bytes_per_job"}]}`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.common import (
    ChildFailed,
    fmt,
    json_line,
    median_or_none,
    ratio,
    render_table,
    run_child_json,
    spread,
    verdict,
)

RESULT_KEYS = ("p50_ms", "p99_ms", "max_ms", "jobs_per_s", "bytes_per_job")
LATENCY_WORKLOADS = ("date-1000", "date-10000")
#: the issue's workloads (the JSON line holds only these) -> the figure the spread
#: column shows for each
HEADLINE = {
    "date-1000": "p99_ms",
    "date-10000": "p99_ms",
    "burst-10000": "jobs_per_s",
    "add-date-10000": "jobs_per_s",
    "add-cron-10000": "jobs_per_s",
    "memory-cron-100000": "bytes_per_job",
}
#: worst cases for cronwell's shared cron schedules (every job its own expression):
#: in the table and the notes under the targets, not in the JSON
DIAGNOSTIC = {
    "add-cron-10000-distinct": "jobs_per_s",
    "memory-cron-100000-distinct": "bytes_per_job",
}
#: workloads whose children may run at the same time (they measure memory, not time)
SIDE_BY_SIDE = frozenset({"memory-cron-100000", "memory-cron-100000-distinct"})
FULL_REPETITIONS = 3
QUICK_REPETITIONS = 1
CHILD_TIMEOUT = 300.0


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def plan(quick: bool) -> list[tuple[str, list[str]]]:
    """(workload, systems) in run order; cronwell rows only once its engine exists.

    The cronwell-on-SQLite rows (extras for the latency and memory workloads) and the
    worst-case diagnostics are left out of --quick to keep it under two minutes.
    """
    cronwell = ["cronwell"] if _importable("engine.scheduler") else []
    sqlite = ["cronwell-sqlite"] if cronwell and not quick and _importable("stores.sqlite") else []
    latency = ["floor", *cronwell, *sqlite, "apscheduler"]
    peers = [*cronwell, "apscheduler"]
    # cronwell runs in a process set up as the service's (a 1 ms GIL switch interval,
    # start-up frozen out of the collector's passes); the peer as its users run it, and
    # beside it set up the same way, so the share of those two knobs is seen
    control = ["apscheduler-tuned"] if cronwell else []
    planned = [
        ("date-1000", latency),
        ("date-10000", [*latency, *control]),
        ("burst-10000", [*peers, *control]),
        ("add-date-10000", peers),
        ("add-cron-10000", peers),
        ("add-cron-10000-distinct", [] if quick else cronwell),
        # on SQLite the jobs live on disk: what is left is the engine's own memory
        ("memory-cron-100000", [*peers, *sqlite]),
        ("memory-cron-100000-distinct", [] if quick else cronwell),
    ]
    return [(workload, systems) for workload, systems in planned if systems]


def child_main(system: str, workload: str) -> None:
    from bench.dispatch_workloads import run_workload

    print(json.dumps(run_workload(system, workload)))


@dataclass(slots=True)
class Cell:
    """Every repetition of one (system, workload)."""

    system: str
    workload: str
    runs: list[dict[str, Any]]
    failures: list[str]

    def median(self, key: str) -> float | None:
        return median_or_none(run.get(key) for run in self.runs)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system, "workload": self.workload}
        out.update({key: self.median(key) for key in RESULT_KEYS})
        return out


def _run_into(cell: Cell, log: Callable[[str], None]) -> None:
    try:
        cell.runs.append(
            run_child_json("bench.dispatch", ["--child", cell.system, cell.workload], CHILD_TIMEOUT)
        )
    except ChildFailed as failure:
        cell.failures.append(str(failure))
        log(f"    failed: {failure}")


#: issue 14's A/B: the bare engine next to the same engine as the service observes it
OBSERVED = ["cronwell", "cronwell-imports", "cronwell-metrics", "cronwell-sse0", "cronwell-sse100"]
#: a worst case shown next to them: 100 clients reading every event of every fire
OBSERVED_DIAGNOSTIC = ["cronwell-sse100-all"]
OBSERVE_WORKLOADS = ("date-1000", "date-10000", "burst-10000")
OBSERVE_REPETITIONS = 5


def observe_plan() -> list[tuple[str, list[str]]]:
    """`--observe`: each latency and burst workload on every OBSERVED system."""
    return [(workload, [*OBSERVED, *OBSERVED_DIAGNOSTIC]) for workload in OBSERVE_WORKLOADS]


def observe_lines(cells: Sequence[Cell]) -> list[str]:
    """Each observed system's medians against the bare engine's, this run."""
    by_key = {(c.system, c.workload): c for c in cells if c.runs}
    lines = []
    for workload in OBSERVE_WORKLOADS:
        bare = by_key.get(("cronwell", workload))
        if bare is None:
            continue
        for system in [*OBSERVED[1:], *OBSERVED_DIAGNOSTIC]:
            cell = by_key.get((system, workload))
            if cell is None:
                continue
            parts = []
            for key, digits in (("p50_ms", 3), ("p99_ms", 3), ("jobs_per_s", 0)):
                ours, base = cell.median(key), bare.median(key)
                if ours is None or base is None:
                    continue
                parts.append(f"{key} {fmt(ours, digits)} vs {fmt(base, digits)}")
            cpu, base_cpu = cell.median("cpu_us_per_job"), bare.median("cpu_us_per_job")
            parts.append(f"cpu us/job {fmt(cpu, 1)} vs {fmt(base_cpu, 1)}")
            runs = f"{len(cell.runs)}/{len(bare.runs)} runs"
            lines.append(f"{workload:<12} {system:<16} {'; '.join(parts)} ({runs})")
    return lines


def measure(
    repetitions: int,
    quick: bool,
    log: Callable[[str], None],
    planned: list[tuple[str, list[str]]] | None = None,
) -> list[Cell]:
    """Run every planned cell `repetitions` times, systems taking turns.

    Memory workloads run their systems' children side by side: only each child's own
    RSS is measured, which CPU contention does not change, and APScheduler needs most
    of a minute to add 100,000 cron jobs. Timed workloads always run alone.
    """
    cells: dict[tuple[str, str], Cell] = {}
    for rep in range(1, repetitions + 1):
        side_by_side: list[Cell] = []
        for workload, systems in planned if planned is not None else plan(quick):
            batch = [cells.setdefault((s, workload), Cell(s, workload, [], [])) for s in systems]
            if workload in SIDE_BY_SIDE:
                side_by_side.extend(batch)
                continue
            log(f"[{rep}/{repetitions}] {workload:<27} {', '.join(systems)}")
            for cell in batch:
                log(f"    {cell.system}")
                _run_into(cell, log)
        log(
            f"[{rep}/{repetitions}] side by side: {', '.join(f'{c.system} {c.workload}' for c in side_by_side)}"
        )
        with ThreadPoolExecutor(max(len(side_by_side), 1)) as pool:
            list(pool.map(lambda cell: _run_into(cell, log), side_by_side))
    return list(cells.values())


def table(cells: Sequence[Cell]) -> str:
    headers = [
        "system",
        "workload",
        "p50 ms",
        "p99 ms",
        "max ms",
        "jobs/s",
        "bytes/job",
        "cpu us/job",
        "runs",
        "spread (headline)",
    ]
    rows = []
    for cell in cells:
        r = cell.result()
        low_high = spread(run.get((HEADLINE | DIAGNOSTIC)[cell.workload]) for run in cell.runs)
        rows.append(
            [
                cell.system,
                cell.workload,
                fmt(r["p50_ms"], 3),
                fmt(r["p99_ms"], 3),
                fmt(r["max_ms"], 3),
                fmt(r["jobs_per_s"]),
                fmt(r["bytes_per_job"]),
                fmt(cell.median("cpu_us_per_job"), 1),
                f"{len(cell.runs)}" + (f" ({len(cell.failures)} failed)" if cell.failures else ""),
                "-" if low_high is None else f"{fmt(low_high[0], 3)} .. {fmt(low_high[1], 3)}",
            ]
        )
    return render_table(headers, rows)


def targets(results: Sequence[dict[str, Any]]) -> list[str]:
    """The issue's target ratios, each computed from this run's medians."""

    def get(system: str, workload: str, key: str) -> float | None:
        for r in results:
            if r["system"] == system and r["workload"] == workload:
                value: float | None = r[key]
                return value
        return None

    lines = []
    for workload in LATENCY_WORKLOADS:
        ours, floor, peer = (
            get(s, workload, "p99_ms") for s in ("cronwell", "floor", "apscheduler")
        )
        gap = None if ours is None or floor is None else ours - floor
        lines.append(
            f"{workload} p99 within 0.5 ms of the floor: cronwell - floor = {fmt(gap, 3)} ms"
            f"  {verdict(None if gap is None else gap <= 0.5)}"
        )
        lower = ratio(peer, ours)
        lines.append(
            f"{workload} p99 >= 3x lower than APScheduler's: {fmt(lower)}x"
            f"  {verdict(None if lower is None else lower >= 3)}"
        )
        lines.append(
            f"{workload} p99 below APScheduler's: {fmt(ours, 3)} against {fmt(peer, 3)} ms"
            f"  {verdict(None if lower is None else lower > 1)}"
        )
        control = get("apscheduler-tuned", workload, "p99_ms")
        if control is not None:
            lines.append(
                f"  (control, not a target: APScheduler in a process set up as cronwell's, "
                f"1 ms GIL switch interval and start-up frozen: p99 {fmt(control, 3)} ms)"
            )
    for workload in ("burst-10000", "add-date-10000", "add-cron-10000"):
        faster = ratio(
            get("cronwell", workload, "jobs_per_s"), get("apscheduler", workload, "jobs_per_s")
        )
        lines.append(
            f"{workload} throughput >= 4x APScheduler's: {fmt(faster)}x"
            f"  {verdict(None if faster is None else faster >= 4)}"
        )
        control = ratio(
            get("cronwell", workload, "jobs_per_s"),
            get("apscheduler-tuned", workload, "jobs_per_s"),
        )
        if control is not None:
            lines.append(
                f"  (control, not a target: {fmt(control)}x APScheduler set up as cronwell's)"
            )
    share = ratio(
        get("cronwell", "memory-cron-100000", "bytes_per_job"),
        get("apscheduler", "memory-cron-100000", "bytes_per_job"),
    )
    lines.append(
        f"memory-cron-100000 bytes per job <= 1/4 of APScheduler's: {fmt(share, 3)}"
        f"  {verdict(None if share is None else share <= 0.25)}"
    )
    adds = ratio(
        get("cronwell", "add-cron-10000-distinct", "jobs_per_s"),
        get("apscheduler", "add-cron-10000", "jobs_per_s"),
    )
    memory = ratio(
        get("cronwell", "memory-cron-100000-distinct", "bytes_per_job"),
        get("apscheduler", "memory-cron-100000", "bytes_per_job"),
    )
    if adds is not None or memory is not None:
        lines.append(
            f"(worst case, every cron job its own expression: adds {fmt(adds)}x APScheduler's, "
            f"memory {fmt(memory, 3)} of APScheduler's; not a target)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dispatch", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the same workloads, one repetition (under two minutes)",
    )
    parser.add_argument("--repetitions", type=int, help="override the number of repetitions")
    parser.add_argument(
        "--observe",
        action="store_true",
        help="only the A/B of issue 14: the engine bare, with /metrics recording, and "
        "with the SSE hub served to 0 and 100 idle clients",
    )
    parser.add_argument("--child", nargs=2, metavar=("SYSTEM", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(*args.child)
        return 0
    repetitions = args.repetitions or (QUICK_REPETITIONS if args.quick else FULL_REPETITIONS)
    if args.observe and not args.repetitions:
        repetitions = QUICK_REPETITIONS if args.quick else OBSERVE_REPETITIONS

    began = time.monotonic()

    def log(message: str) -> None:
        print(f"{time.monotonic() - began:6.1f}s {message}", file=sys.stderr, flush=True)

    cells = measure(repetitions, args.quick, log, observe_plan() if args.observe else None)
    results = [cell.result() for cell in cells if cell.runs]
    print(table(cells))
    if args.observe:
        print()
        print("observed against bare (medians, this run; observed vs bare):")
        for line in observe_lines(cells):
            print(f"  {line}")
        print(json_line("dispatch-observe", results))
        return 0 if all(cell.runs for cell in cells) else 1
    issue_results = [r for r in results if r["workload"] in HEADLINE]
    print()
    for failure in (f for cell in cells for f in cell.failures):
        print(f"failed run: {failure}")
    for cell in cells:
        early = sum(run.get("early_starts", 0) for run in cell.runs)
        if early:
            print(
                f"WARNING: {cell.system} started {early} {cell.workload} job(s) over 1 ms before their due time"
            )
    print("targets (cronwell against the floor and APScheduler, this run):")
    for line in targets(results):
        print(f"  {line}")
    print(json_line("dispatch", issue_results))
    return 0 if all(cell.runs for cell in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
