"""The dispatch workloads, run inside one child process against one system.

Each returns a result row (the JSON keys of `bench.dispatch`, None where a figure does
not apply) plus a few diagnostics the table shows.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bench.common import LatencySummary, rss_bytes, wall_now
from bench.systems import add_rate_hint, load_system
from bench.systems.base import CronSpec, DispatchSystem, StartRecorder

#: seconds over which the date-N jobs are spread
SPREAD_SECONDS = 5.0
#: jobs added (untimed) before measuring, so lazy imports and first-call caches are warm
WARMUP_JOBS = 200
#: the setup must end this long before the first job is due, or the run is refused
SETUP_MARGIN = 0.2
#: seconds between the end of the adds and the first due time, at the planned add rate
LEAD_SECONDS = 0.5
#: a start this much before its due time counts as early (a scheduler bug, reported)
EARLY_TOLERANCE = 0.001
#: fresh tries a latency run gets when its adds overrun the lead
MAX_ATTEMPTS = 3


class SetupOverran(RuntimeError):
    """Adding the jobs took so long that the first ones were (nearly) due."""

    def __init__(self, add_rate: float) -> None:
        self.add_rate = add_rate
        super().__init__(
            f"jobs were added at only {add_rate:,.0f}/s: the first were due before the adds ended"
        )


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    jobs: int
    #: (system, workload name, jobs) -> result row
    run: Callable[[str, str, int], dict[str, Any]]


def row(system: str, workload: str, **figures: Any) -> dict[str, Any]:
    """A result row with every JSON key present (None when not applicable)."""
    keys = ("p50_ms", "p99_ms", "max_ms", "jobs_per_s", "bytes_per_job")
    base: dict[str, Any] = {"system": system, "workload": workload}
    base.update({key: figures.pop(key, None) for key in keys})
    base.update(figures)
    return base


def microsecond_due(ts: float) -> float:
    """The due time a scheduler actually receives (datetimes hold microseconds)."""
    return datetime.fromtimestamp(ts, UTC).timestamp()


def far_cron_specs(count: int, first: int = 0, *, distinct: bool = False) -> list[CronSpec]:
    """`count` cron jobs that fire only months away, so none fires while memory or add
    rate is measured.

    The standard mix is a daily job at each minute of the day (1,440 expressions, so at
    10,000 or 100,000 jobs each is shared by many jobs, as real fleets share "0 * * * *").
    `distinct=True` gives every job its own expression: the worst case for a system
    that shares one compiled schedule between jobs of the same expression.
    """
    now_month = datetime.now(UTC).month
    months = [(now_month + offset - 1) % 12 + 1 for offset in (4, 5, 6)]
    if not distinct:
        return [CronSpec(i % 60, (i // 60) % 24, 1, months[0]) for i in range(first, first + count)]
    per_month = 60 * 24 * 28
    if first + count > per_month * len(months):
        raise ValueError(f"only {per_month * len(months)} distinct far cron expressions")
    return [
        CronSpec(
            minute=i % 60,
            hour=(i // 60) % 24,
            day_of_month=(i // (60 * 24)) % 28 + 1,
            month=months[i // per_month],
        )
        for i in range(first, first + count)
    ]


def far_dues(count: int) -> list[float]:
    """Distinct due times an hour and more away: added, never fired."""
    start = wall_now() + 3600.0
    return [microsecond_due(start + i * 0.001) for i in range(count)]


def _started(
    system_name: str, expected: int, *, fires: bool = True
) -> tuple[DispatchSystem, StartRecorder]:
    recorder = StartRecorder(expected)
    system = load_system(system_name, recorder)
    system.start(fires=fires)
    return system, recorder


def _fire_once(
    system_name: str, jobs: int, *, burst: bool, add_rate: float
) -> tuple[StartRecorder, list[float], float]:
    """One attempt: add the jobs to a fresh running system, due after a lead sized for
    `add_rate`, and wait for them all to start. SetupOverran when the adds were slower.

    Returns the recorder, the due times and the CPU seconds the process spent from the
    end of the adds until the last start (firing work only: idle waits cost none).
    """
    system, recorder = _started(system_name, jobs)
    try:
        began = wall_now()
        first_due = began + LEAD_SECONDS + jobs / add_rate
        step = 0.0 if burst else SPREAD_SECONDS / max(jobs - 1, 1)
        dues = [microsecond_due(first_due + i * step) for i in range(jobs)]
        system.add_date_jobs(dues)
        setup_done = wall_now()
        if setup_done > dues[0] - SETUP_MARGIN:
            raise SetupOverran(jobs / (setup_done - began))
        cpu_before = time.process_time()
        if not recorder.done.wait(timeout=dues[-1] - wall_now() + 120.0):
            raise TimeoutError(f"{recorder.remaining} of {jobs} jobs never started")
        cpu = time.process_time() - cpu_before
    finally:
        system.stop()
    return recorder, dues, cpu


def measure_latency(system_name: str, workload: str, jobs: int, *, burst: bool) -> dict[str, Any]:
    """Lateness (start - due) of `jobs` one-shot date jobs added to a running system,
    spread evenly over SPREAD_SECONDS, or all due at one instant for a burst.

    The wait before the first due time is sized from the system's add-rate hint; on a
    machine busy enough that the adds overrun it, the attempt is thrown away and
    repeated on a fresh system with a lead sized from the rate just seen.
    """
    add_rate = add_rate_hint(system_name)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            recorder, dues, cpu = _fire_once(system_name, jobs, burst=burst, add_rate=add_rate)
            break
        except SetupOverran as overran:
            if attempt == MAX_ATTEMPTS:
                raise
            add_rate = overran.add_rate / 2
    lateness = [start - due for start, due in zip(recorder.starts, dues, strict=True)]
    summary = LatencySummary.of_seconds(lateness)
    figures: dict[str, Any] = {
        "p50_ms": summary.p50_ms,
        "p99_ms": summary.p99_ms,
        "max_ms": summary.max_ms,
        "min_ms": min(lateness) * 1000.0,
        "early_starts": sum(1 for late in lateness if late < -EARLY_TOLERANCE),
        "cpu_us_per_job": cpu / jobs * 1e6,
        "attempts": attempt,
    }
    if burst:
        last_start = max(recorder.starts)
        figures["jobs_per_s"] = jobs / (last_start - dues[0])
    return row(system_name, workload, **figures)


def measure_adds(
    system_name: str, workload: str, jobs: int, *, cron: bool, distinct: bool = False
) -> dict[str, Any]:
    """Jobs per second added to a running system, until every add is acknowledged."""
    system, _ = _started(system_name, 0)
    try:
        if cron:
            system.add_cron_jobs(far_cron_specs(WARMUP_JOBS, distinct=distinct))
            specs = far_cron_specs(jobs, first=WARMUP_JOBS, distinct=distinct)
            began, cpu_before = time.perf_counter(), time.process_time()
            system.add_cron_jobs(specs)
        else:
            system.add_date_jobs(far_dues(WARMUP_JOBS))
            dues = far_dues(jobs)
            began, cpu_before = time.perf_counter(), time.process_time()
            system.add_date_jobs(dues)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_before
    finally:
        system.stop()
    return row(
        system_name,
        workload,
        jobs_per_s=jobs / elapsed,
        seconds=elapsed,
        cpu_us_per_job=cpu / jobs * 1e6,
    )


def measure_memory(
    system_name: str, workload: str, jobs: int, *, distinct: bool = False
) -> dict[str, Any]:
    """Resident memory added per cron job, in this (fresh) process."""
    system, _ = _started(system_name, 0, fires=False)
    try:
        system.add_cron_jobs(far_cron_specs(WARMUP_JOBS, distinct=distinct))
        specs = far_cron_specs(jobs, first=WARMUP_JOBS, distinct=distinct)
        gc.collect()
        before = rss_bytes()
        system.add_cron_jobs(specs)
        del specs
        gc.collect()
        after = rss_bytes()
    finally:
        system.stop()
    return row(system_name, workload, bytes_per_job=(after - before) / jobs, rss_mb=after / 2**20)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("date-1000", 1000, partial(measure_latency, burst=False)),
        Workload("date-10000", 10_000, partial(measure_latency, burst=False)),
        Workload("burst-10000", 10_000, partial(measure_latency, burst=True)),
        Workload("add-date-10000", 10_000, partial(measure_adds, cron=False)),
        Workload("add-cron-10000", 10_000, partial(measure_adds, cron=True)),
        Workload("memory-cron-100000", 100_000, measure_memory),
        # worst cases for cronwell's shared cron schedules: shown, not part of the JSON
        Workload(
            "add-cron-10000-distinct", 10_000, partial(measure_adds, cron=True, distinct=True)
        ),
        Workload("memory-cron-100000-distinct", 100_000, partial(measure_memory, distinct=True)),
    )
}


def run_workload(system_name: str, workload: str) -> dict[str, Any]:
    """Entry point of a child process: one system, one workload, one result row."""
    spec = WORKLOADS[workload]
    result = spec.run(system_name, workload, spec.jobs)
    if any(isinstance(v, float) and math.isnan(v) for v in result.values()):
        raise RuntimeError(f"{system_name}/{workload}: a job never recorded its start")
    return result
