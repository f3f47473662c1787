"""Idle cost: CPU time an engine holding one far-off job uses per second of wall time.

    python -m bench.idle [--seconds S] [--repetitions N]

An idle scheduler should sleep until its next due time, not poll. cronwell's engine and
APScheduler 3's BackgroundScheduler each hold one job due in an hour, in their own
child interpreter, taking turns within each repetition; the figure is process CPU
seconds (user + system) per wall second while idle. Prints a table of medians and, as
its last line, one JSON object: `{"bench": "idle", "results": [{"system",
"cpu_ms_per_s"}]}`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from bench.common import json_line, render_table, run_child_json

SYSTEMS = ("cronwell", "apscheduler")


def _cpu() -> float:
    return time.process_time()  # every thread of the process, user + system, in ns steps


def measure(system: str, seconds: float) -> float:
    """In this process: start `system` with one job an hour away, then CPU ms per s."""
    due = datetime.now(UTC) + timedelta(hours=1)
    if system == "cronwell":
        from engine.interfaces import Outcome, RunRequest
        from engine.model import Job, JobKind, Status
        from engine.scheduler import Scheduler
        from engine.triggers import DateTrigger
        from stores.memory import MemoryStore

        def runner(request: RunRequest) -> Outcome:
            return Outcome(Status.COMPLETED)

        scheduler = Scheduler(MemoryStore(), runner)
        scheduler.start()
        job = Job(id="far", name="far", kind=JobKind.CLASS, target="x.Y", trigger=DateTrigger(due))
        scheduler.add_job(job).result(timeout=10)
        stop: Callable[[], object] = partial(scheduler.shutdown, timeout=5)
    else:
        from apscheduler.schedulers.background import BackgroundScheduler

        peer = BackgroundScheduler()
        peer.start()
        peer.add_job(lambda: None, "date", run_date=due)
        stop = partial(peer.shutdown, wait=False)
    time.sleep(0.2)  # past start-up
    wall, cpu = time.perf_counter(), _cpu()
    time.sleep(seconds)
    used = (_cpu() - cpu) / (time.perf_counter() - wall)
    stop()
    return used * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps({"cpu_ms_per_s": measure(args.child, args.seconds)}))
        return 0
    figures: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    for _ in range(args.repetitions):
        for system in SYSTEMS:
            child = ["--child", system, "--seconds", str(args.seconds)]
            figures[system].append(
                float(run_child_json("bench.idle", child, timeout=60)["cpu_ms_per_s"])
            )
    rows = [
        [system, f"{statistics.median(values):.2f}", f"{min(values):.2f}..{max(values):.2f}"]
        for system, values in figures.items()
    ]
    print(render_table(["system", "idle CPU ms per s (median)", "spread"], rows))
    results = [
        {"system": system, "cpu_ms_per_s": statistics.median(values)}
        for system, values in figures.items()
    ]
    print(json_line("idle", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
