"""The start journal's cross-machine window: how long after a run starts its `running`
mark is in the store.

    python -m bench.journal_window [--quick] [--runs N]

A worker appends a run's id to this machine's start journal and starts it; the recorder
thread writes its `running` mark to the store a moment later, batched with others
(engine/running/journal.py, recorder.py). A node on another machine that takes over
after this one dies sees only the store: a run started but not yet marked there looks
never started, and is run again. This measures that gap on an engine as the service runs
it (journal, recorder thread, durable store): SQLite, and MongoDB (the `mongod` at
MONGO_URI, else a secantusdb server this run starts, named in the rows). For each run,
from the moment its runner is called (microseconds after the journal append) to the
return of the store call that wrote its running mark (or its terminal record, when both
went in one batch). Two workloads: one-off jobs due STEADY_RATE a second, and BURST jobs
due at one instant. Stores take turns run by run; the table gives medians over the runs.
The last line is one JSON object: `{"bench": "journal_window", "results": [{"store",
"workload", "runs", "window_p50_ms", "window_p99_ms", "window_max_ms", "raw"}]}`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import fmt, json_line, median_or_none, percentile, render_table
from bench.store import mongo_server
from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Job, JobKind, Status
from engine.scheduler import Scheduler
from engine.triggers import DateTrigger
from stores.base import Store
from stores.mongo import MongoStore
from stores.sqlite import SqliteStore

STEADY_RATE = 100
STEADY_SECONDS = 4.0
BURST = 1000


class _Timing(Store):
    """Notes when each execution first reached the store after its start (the recorder
    writes running marks and terminal records with `record_progress` alone; its one-by-one
    fallback after a failed batch is not timed, and a run it wrote so is not counted)."""

    written: dict[str, float]

    def _note(self, executions: Sequence[Execution]) -> None:
        now = time.perf_counter()
        for execution in executions:
            if execution.started_at is not None:
                self.written.setdefault(execution.id, now)

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        super().record_progress(started, finished)
        self._note([*started, *finished])


class TimedSqlite(_Timing, SqliteStore):
    pass


class TimedMongo(_Timing, MongoStore):
    pass


def measure(store: _Timing, folder: Path, dues: list[datetime]) -> list[float]:
    """Fire one job per due time; the window of each run, in milliseconds."""
    store.written = {}
    started: dict[str, float] = {}
    lock = threading.Lock()

    def run(request: RunRequest) -> Outcome:
        now = time.perf_counter()
        with lock:
            started[request.execution.id] = now
        return Outcome(Status.COMPLETED)

    scheduler = Scheduler(store, run, pool_size=10, journal_folder=folder / "journal")
    scheduler.start()
    try:
        futures = [
            scheduler.add_job(
                Job(
                    id=f"w{i}",
                    name="window",
                    kind=JobKind.CLASS,
                    target="bench.noop",
                    trigger=DateTrigger(due),
                    misfire_grace_time=None,
                )
            )
            for i, due in enumerate(dues)
        ]
        for future in futures:
            future.result(60)
        if datetime.now(UTC) > min(dues):
            raise RuntimeError("adding the jobs took longer than their lead")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with lock:
                if len(started) >= len(dues) and set(started) <= set(store.written):
                    break
    finally:
        scheduler.shutdown(timeout=10.0)
    return [(store.written[i] - t) * 1000 for i, t in started.items() if i in store.written]


@dataclass(frozen=True, slots=True)
class Setup:
    """One store to measure: a label, a factory, the seconds one job add may take (the
    lead before the first fire) and the workloads' sizes (secantusdb, a server in
    Python, gets smaller ones: its adds took 30-80 ms each on the shared machine)."""

    label: str
    make: Callable[[Path], _Timing]
    per_add: float
    steady_rate: int
    burst: int


def due_times(setup: Setup, burst: bool) -> list[datetime]:
    """A workload's due times, the first far enough ahead for every add."""
    count = setup.burst if burst else int(setup.steady_rate * STEADY_SECONDS)
    first = datetime.now(UTC) + timedelta(seconds=2 + count * setup.per_add)
    if burst:
        return [first] * count
    return [first + timedelta(seconds=i / setup.steady_rate) for i in range(count)]


def one_store(setup: Setup) -> list[dict[str, Any]]:
    """Both workloads on a fresh store each; one row per workload."""
    found = []
    for burst in (False, True):
        workload = f"burst {setup.burst}" if burst else f"steady {setup.steady_rate}/s"
        with tempfile.TemporaryDirectory(prefix="cronwell-window-") as tmp:
            store = setup.make(Path(tmp))
            store.open()
            try:
                windows = measure(store, Path(tmp), due_times(setup, burst))
            finally:
                store.close()
        found.append(
            {
                "store": setup.label,
                "workload": workload,
                "p50": percentile(windows, 50),
                "p99": percentile(windows, 99),
                "max": max(windows),
                "measured": len(windows),
                "load_avg": os.getloadavg()[0],
            }
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one run")
    parser.add_argument("--runs", type=int, help="runs per store (default 3)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    raw: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="cronwell-window-mongo-") as folder,
        mongo_server(Path(folder)) as (mongo_label, mongo_uri),
    ):
        setups = [
            Setup("sqlite", lambda tmp: TimedSqlite(tmp / "window.db"), 0.002, STEADY_RATE, BURST),
            Setup(
                mongo_label,
                lambda tmp: TimedMongo(mongo_uri, f"bench_window_{time.time_ns()}"),
                0.08,
                50,
                300,
            ),
        ]
        for run in range(runs):
            for setup in setups if run % 2 == 0 else setups[::-1]:
                for row in one_store(setup):
                    raw.setdefault((row["store"], row["workload"]), []).append(row)
                    print(
                        f"run {run + 1}/{runs} {setup.label} {row['workload']}: p50 "
                        f"{row['p50']:.2f} ms, p99 {row['p99']:.2f} ms, load {row['load_avg']:.1f}",
                        file=sys.stderr,
                        flush=True,
                    )
    results = [
        {
            "store": store,
            "workload": workload,
            "runs": len(rows),
            "window_p50_ms": median_or_none(r["p50"] for r in rows),
            "window_p99_ms": median_or_none(r["p99"] for r in rows),
            "window_max_ms": max(r["max"] for r in rows),
            "load_avg": median_or_none(r["load_avg"] for r in rows),
            "raw": rows,
        }
        for (store, workload), rows in raw.items()
    ]
    print(
        render_table(
            ["store", "workload", "runs", "p50 ms", "p99 ms", "max ms", "load avg"],
            [
                [
                    r["store"],
                    r["workload"],
                    str(r["runs"]),
                    fmt(r["window_p50_ms"], 2),
                    fmt(r["window_p99_ms"], 2),
                    fmt(r["window_max_ms"], 1),
                    fmt(r["load_avg"], 1),
                ]
                for r in results
            ],
        )
    )
    print(json_line("journal_window", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
