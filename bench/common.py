"""Helpers every benchmark shares: a fine wall clock, percentiles, tables, ports, RSS,
child processes and the one-JSON-object last line.

Kept free of APScheduler, Flask and the engine so the smoke test can import it alone.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


# -- time -------------------------------------------------------------------------------
def wall_now() -> float:
    """POSIX seconds: the clock the schedulers compare their due times with.

    Read directly, not as perf_counter from an anchor taken at import: while NTP slews
    the wall clock (seen here at its 500 ppm maximum for hours), the two drift apart by
    half a millisecond every second, so a process's anchored readings fell behind the
    schedulers' clock by tens of milliseconds and every system, the bare-wait floor
    included, seemed to start its jobs early."""
    return time.time()


# -- statistics -------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default).

    Raises ValueError on an empty sequence or q outside 0..100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, not {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """p50 / p99 / max of a set of latencies, in milliseconds."""

    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of_seconds(cls, latencies: Sequence[float]) -> LatencySummary:
        ms = sorted(v * 1000.0 for v in latencies)
        return cls(percentile(ms, 50), percentile(ms, 99), ms[-1])


def median_or_none(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def spread(values: Iterable[float | None]) -> tuple[float, float] | None:
    """(min, max) of the values that are not None, to show how repeatable a figure is."""
    present = [v for v in values if v is not None]
    return (min(present), max(present)) if present else None


# -- output -----------------------------------------------------------------------------
def fmt(value: float | int | None, digits: int = 2) -> str:
    """A table cell: '-' for None, thousands separators for big numbers."""
    if value is None:
        return "-"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left-aligned text table with a rule under the header."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(lines)


def json_line(bench: str, results: Sequence[Mapping[str, Any]]) -> str:
    """The last line every benchmark prints: one compact JSON object."""
    return json.dumps(
        {"bench": bench, "results": [dict(r) for r in results]}, separators=(",", ":")
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


# -- processes and ports ----------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux) or psutil elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


class ChildFailed(RuntimeError):
    """A benchmark child process exited badly or printed no JSON result."""


def run_child_json(module: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run `python -m module args...` in a fresh interpreter; return its last stdout line
    parsed as JSON. A fresh process per measurement keeps memory clean and systems apart.
    """
    argv = [sys.executable, "-m", module, *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ChildFailed(f"{' '.join(args)}: no result within {timeout:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        raise ChildFailed(f"{' '.join(args)}: exit {done.returncode}: {' | '.join(tail)}")
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed
