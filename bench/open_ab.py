"""Same-run A/B of the open loop across checkouts: one `cronwell serve` per tree on its
own SQLite file, all up at once, and `bench.open_loop` sending one endpoint at a fixed
rate to each in turn, round after round, the order rotating each round, so every tree
sees the same moments of a shared machine.

    python -m bench.open_ab --tree old=/tmp/st-old --tree new=. [--rounds 6]
        [--rate 400] [--seconds 4] [--endpoint schedule-job]

A tail measured by one run on a machine other sessions load says little; trees taking
turns within one run is what makes a regression (issue 17's schedule-job p99) visible.
Prints one line per step (p50 / p99 / max, the generator's send lag and the load
average), a summary with medians, and as its last line one JSON object.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.api import POOL_SIZE, Scripts, one_request, write_scripts
from bench.api_open import open_loop
from bench.api_servers import Server, cronwell_server
from bench.common import LatencySummary, json_line, render_table

#: requests sent to each server before the first round, not counted
WARM_REQUESTS = 400


def load_average() -> str:
    """The 1-minute load average now, for the line of each step."""
    return f"{os.getloadavg()[0]:.2f}"


def tree(value: str) -> tuple[str, Path]:
    name, _, path = value.partition("=")
    if not name or not path:
        raise argparse.ArgumentTypeError(f"--tree NAME=PATH, not {value!r}")
    return name, Path(path).resolve()


def step(
    server: Server, scripts: Scripts, endpoint: str, rate: int, seconds: float, tag: str
) -> dict[str, Any]:
    """One open-loop step against `server`; the measured figures, flat."""
    count = int(rate * seconds)
    requests = [one_request(endpoint, f"{tag}-{k}", k, scripts) for k in range(count)]
    measured = open_loop(server, requests, rate, seconds)
    latencies = measured["latencies"]
    summary = LatencySummary.of_seconds(latencies) if latencies else None
    return {
        "system": server.name,
        "p50_ms": summary.p50_ms if summary else None,
        "p99_ms": summary.p99_ms if summary else None,
        "max_ms": summary.max_ms if summary else None,
        "send_lag_p99_ms": measured["send_lag_p99_ms"],
        "errors": measured["errors"],
        "load": load_average(),
    }


def rotated(servers: Sequence[Server], round_no: int) -> list[Server]:
    """The order of round `round_no`: each round starts one server further on, so each
    is first (and follows each other one) equally often over len(servers) rounds."""
    shift = round_no % len(servers)
    return [*servers[shift:], *servers[:shift]]


def summarise(names: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per tree: its rounds, the medians over them of p50 and p99, and each round's."""
    summary = []
    for name in names:
        mine = [r for r in rows if r["system"] == name and r["p99_ms"] is not None]
        summary.append(
            {
                "system": name,
                "rounds": len(mine),
                "p50_median_ms": statistics.median(r["p50_ms"] for r in mine) if mine else None,
                "p99_median_ms": statistics.median(r["p99_ms"] for r in mine) if mine else None,
                "p50_ms": [round(r["p50_ms"], 2) for r in mine],
                "p99_ms": [round(r["p99_ms"], 2) for r in mine],
            }
        )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.open_ab", description=__doc__)
    parser.add_argument("--tree", type=tree, action="append", required=True)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rate", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--endpoint", default="schedule-job", choices=("schedule-job", "get-job"))
    args = parser.parse_args(argv)
    # a SIGTERM ends the run through its `with` blocks, so the servers are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory(prefix="cronwell-open-ab-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        scripts = write_scripts(work / "scripts", work)
        root = scripts.noop.parent
        servers = []
        for name, path in args.tree:
            up = stack.enter_context(
                cronwell_server(work / name, root, POOL_SIZE, pythonpath=str(path))
            )
            servers.append(Server(name, up.host, up.port))
        for server in servers:
            warm = WARM_REQUESTS / args.rate
            step(server, scripts, args.endpoint, args.rate, warm, f"warm-{server.name}")
        rows: list[dict[str, Any]] = []
        for round_no in range(args.rounds):
            for server in rotated(servers, round_no):
                tag = f"r{round_no}-{server.name}"
                row = step(server, scripts, args.endpoint, args.rate, args.seconds, tag)
                row["round"] = round_no
                rows.append(row)
                print(
                    f"round {round_no} {server.name}: p50 {row['p50_ms']:.2f} p99 {row['p99_ms']:.2f}"
                    f" max {row['max_ms']:.1f} ms, send lag p99 {row['send_lag_p99_ms']:.2f} ms,"
                    f" errors {row['errors']}, load {row['load']}",
                    flush=True,
                )
    summary = summarise([name for name, _ in args.tree], rows)
    print(
        render_table(
            ["tree", "rounds", "p50 median", "p99 median", "p50 per round", "p99 per round"],
            [
                [
                    s["system"],
                    str(s["rounds"]),
                    f"{s['p50_median_ms']:.2f}",
                    f"{s['p99_median_ms']:.2f}",
                    ", ".join(f"{v:.1f}" for v in s["p50_ms"]),
                    ", ".join(f"{v:.1f}" for v in s["p99_ms"]),
                ]
                for s in summary
            ],
        )
    )
    print(json_line("open_ab", summary + rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
