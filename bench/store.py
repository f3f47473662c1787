"""Store benchmark: what jobs and execution records cost on each available backend.

    python -m bench.store [--quick]
    python -m bench.store --scale [--parent TREE] [--runs N] [--jobs N] [--executions N]

Per backend (memory, a SQLite file, and MongoStore on a real MongoDB server over TCP:
the mongod at MONGO_URI when set, else a secantusdb server this run starts in a child
process, as the tests do; the row's backend says which): add 10,000 jobs; record 10,000
executions (add + finish, the two writes a fire makes); on SQLite also the same records
from 4 threads at once (the loop, pool and API threads share the store), loading
100,000 jobs (`list_jobs`) and starting a Scheduler on them (`load-and-schedule-100000`:
recovery, heap build); on MongoDB loading 10,000 jobs. --quick runs a tenth of every
count.
Prints a table, then as its last line one JSON object:
`{"bench": "store", "results": [{"backend", "workload", "ops", "seconds", "ops_per_s",
"ms_per_op"}]}`.

Issue 3's targets: an execution record under 1 ms on SQLite; 100,000 jobs loaded and
scheduled in under 5 s.

`--scale` measures issue 17's instead, through a real `cronwell serve` on loopback
(bench/store_scale.py): with 1,000,000 jobs in SQLite, start-up under 15 s and resident
memory under 1 GiB; with 1,000,000 executions stored, `/api/scheduler/stats` under
100 ms and a filtered executions page under 20 ms. `--parent TREE` runs a checkout of
the parent commit beside this one, run by run, for the same-run A/B.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import fmt, json_line, render_table, verdict
from engine.ids import new_id
from engine.model import Execution, Job, JobKind, Status
from engine.triggers import CronTrigger
from stores.base import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RECORD_TARGET_MS = 1.0
LOAD_TARGET_S = 5.0
THREADS = 4


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    workload: str
    ops: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "workload": self.workload,
            "ops": self.ops,
            "seconds": round(self.seconds, 4),
            "ops_per_s": round(self.ops / self.seconds, 1) if self.seconds else None,
            "ms_per_op": round(self.seconds * 1000 / self.ops, 4) if self.ops else None,
        }


def make_job(i: int) -> Job:
    """A job like the scheduler surface makes: a job class on cron fields (60 distinct
    expressions, as many jobs share a few schedules), due within the next two hours."""
    trigger = CronTrigger(minute=i % 60, hour="*/2")
    return Job(
        id=new_id(),
        name=f"bench job {i}",
        kind=JobKind.CLASS,
        target="jobs.echo.EchoJob",
        trigger=trigger,
        args=[i, "hello"],
        kwargs={"subject": "bench", "n": i},
        owner=f"user{i % 10}",
        next_run_time=trigger.next_fire_time(T0),
        created_at=T0,
        updated_at=T0,
    )


def timed(work: Callable[[], Any]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def add_jobs(store: Store, jobs: list[Job]) -> None:
    for job in jobs:
        store.add_job(job)


def record_executions(store: Store, job: Job, count: int) -> None:
    """What the engine writes per fire: the queued record, then its terminal state."""
    for i in range(count):
        at = T0 + timedelta(microseconds=i)
        execution = Execution(
            id=new_id(),
            job_id=job.id,
            status=Status.RUNNING,
            created_at=at,
            started_at=at,
            owner=job.owner,
        )
        store.add_execution(execution)
        execution.status, execution.completed_at, execution.output = Status.COMPLETED, at, "ok\n"
        store.finish_execution(execution)


def record_in_threads(store: Store, job: Job, count: int) -> None:
    threads = [
        threading.Thread(target=record_executions, args=(store, job, count // THREADS))
        for _ in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@contextmanager
def mongo_server(folder: Path) -> Iterator[tuple[str, str]]:
    """(label, URI) of the MongoDB server to measure: MONGO_URI's, or a secantusdb
    server started for this run (tests/mongo_server.py; it is never imported here)."""
    if uri := os.environ.get("MONGO_URI"):
        yield "mongo (mongod at MONGO_URI)", uri
        return
    from tests.mongo_server import SecantusProcess, secantus_version

    server = SecantusProcess(folder / "secantusdb").start()
    try:
        yield f"mongo (secantusdb {secantus_version()} over TCP, replica set)", server.uri
    finally:
        server.stop()


def backends(
    folder: Path, mongo_uri: str, mongo_label: str
) -> Iterator[tuple[str, Callable[[], Store]]]:
    from stores.memory import MemoryStore
    from stores.mongo import MongoStore
    from stores.sqlite import SqliteStore

    yield "memory", MemoryStore
    yield "sqlite", lambda: SqliteStore(folder / f"{new_id()}.db")
    yield mongo_label, lambda: MongoStore(mongo_uri, f"cronwell_bench_{new_id()}")


@contextmanager
def opened(factory: Callable[[], Store]) -> Iterator[Store]:
    store = factory()
    store.open()
    try:
        yield store
    finally:
        client = getattr(store, "_client", None)
        if client is not None and store.db_name.startswith("cronwell_bench_"):  # type: ignore[attr-defined]
            client.drop_database(store.db_name)  # type: ignore[attr-defined]
        store.close()


def per_backend(name: str, factory: Callable[[], Store], scale: int) -> list[Result]:
    results: list[Result] = []
    with opened(factory) as store:
        jobs = [make_job(i) for i in range(scale)]
        results.append(
            Result(name, f"add-jobs-{scale}", scale, timed(lambda: add_jobs(store, jobs)))
        )
        job = jobs[0]
        seconds = timed(lambda: record_executions(store, job, scale))
        results.append(Result(name, f"record-executions-{scale}", scale, seconds))
        if name == "sqlite":
            seconds = timed(lambda: record_in_threads(store, job, scale))
            results.append(
                Result(name, f"record-executions-{scale}-{THREADS}-threads", scale, seconds)
            )
        if name.startswith("mongo"):
            results.append(load_mongo(name, store, scale))
    return results


def load_mongo(name: str, store: Store, count: int) -> Result:
    """`list_jobs` of `count` jobs: a fresh collection filled in one insert_many."""
    from stores.mongo import to_document

    jobs = store._collection("jobs")  # type: ignore[attr-defined]
    jobs.delete_many({})
    jobs.insert_many([to_document(make_job(i)) for i in range(count)])
    loaded: list[Job] = []
    seconds = timed(lambda: loaded.extend(store.list_jobs()))
    assert len(loaded) == count, f"loaded {len(loaded)} of {count} jobs"
    return Result(name, f"load-jobs-{count}", count, seconds)


def fill_sqlite(path: Path, count: int) -> None:
    """`count` jobs in a fresh SQLite file, written through the store in one transaction."""
    from stores.sql import JOBS
    from stores.sqlite import SqliteStore

    store = SqliteStore(path)
    store.open()
    try:
        with store._transaction() as cursor:
            rows = [store._job_binds(JOBS.row(make_job(i))) for i in range(count)]
            store._execute_many(cursor, store._sql["insert_jobs"], rows)
    finally:
        store.close()


def load(path: Path, count: int) -> list[Result]:
    from stores.sqlite import SqliteStore

    store = SqliteStore(path)
    store.open()
    try:
        loaded: list[Job] = []
        seconds = timed(lambda: loaded.extend(store.list_jobs()))
        assert len(loaded) == count, f"loaded {len(loaded)} of {count} jobs"
        results = [Result("sqlite", f"load-jobs-{count}", count, seconds)]
        results.extend(load_and_schedule(store, count))
        return results
    finally:
        store.close()


def load_and_schedule(store: Store, count: int) -> list[Result]:
    """Scheduler.start() on the filled file: recovery, every job onto the heap."""
    try:
        from engine.clock import FakeClock
        from engine.interfaces import Outcome
        from engine.scheduler import Scheduler
    except ImportError:  # the engine is not there yet
        return []

    def no_op(request: Any) -> Outcome:
        return Outcome(Status.COMPLETED)

    scheduler = Scheduler(store, no_op, clock=FakeClock(T0), pool_size=1)
    recovered: list[Any] = []
    seconds = timed(lambda: recovered.append(scheduler.start(loop_thread=False)))
    scheduler.shutdown(timeout=1.0)
    assert recovered[0].jobs == count, f"scheduled {recovered[0].jobs} of {count} jobs"
    return [Result("sqlite", f"load-and-schedule-{count}", count, seconds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of every count")
    parser.add_argument("--scale", action="store_true", help="the million-row figures")
    parser.add_argument("--parent", type=Path, help="with --scale: a parent checkout to A/B")
    parser.add_argument("--runs", type=int, default=3, help="with --scale: rounds")
    parser.add_argument("--jobs", type=int, default=1_000_000, help="with --scale")
    parser.add_argument("--executions", type=int, default=1_000_000, help="with --scale")
    parser.add_argument("--requests", type=int, default=20, help="with --scale: per query")
    parser.add_argument(
        "--files", type=Path, help="with --scale: keep the filled files here and reuse them"
    )
    parser.add_argument(
        "--daily",
        action="store_true",
        help="with --scale: the jobs fire every day, spread over the next 24 hours "
        "(default: on one day months away, so none is due)",
    )
    parser.add_argument(
        "--hold-all",
        action="store_true",
        help="with --scale: also start this tree with every job in memory "
        "(CRONWELL_LOAD_AHEAD=0) on the same files",
    )
    args = parser.parse_args(argv)
    if args.scale:
        return scale_main(args)
    scale, big = (1_000, 10_000) if args.quick else (10_000, 100_000)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="cronwell-bench-store-") as tmp:
        folder = Path(tmp)
        with mongo_server(folder) as (mongo_label, mongo_uri):
            for name, factory in backends(folder, mongo_uri, mongo_label):
                print(f"... {name}", file=sys.stderr, flush=True)
                results.extend(per_backend(name, factory, scale))
        print(f"... sqlite: {big:,} jobs", file=sys.stderr, flush=True)
        fill_sqlite(folder / "load.db", big)
        results.extend(load(folder / "load.db", big))
    rows = [
        [
            r.backend,
            r.workload,
            fmt(r.ops),
            f"{r.seconds:.3f}",
            fmt(r.ops / r.seconds, 0),
            f"{r.seconds * 1000 / r.ops:.4f}",
        ]
        for r in results
    ]
    print(render_table(["backend", "workload", "ops", "seconds", "ops/s", "ms/op"], rows))
    print()
    record = next(
        r for r in results if r.backend == "sqlite" and r.workload == f"record-executions-{scale}"
    )
    record_ms = record.seconds * 1000 / record.ops
    print(
        f"SQLite execution record (add + finish): {record_ms:.3f} ms  target < {RECORD_TARGET_MS} ms  {verdict(record_ms < RECORD_TARGET_MS)}"
    )
    scheduled = [r for r in results if r.workload.startswith("load-and-schedule")]
    if scheduled and not args.quick:
        s = scheduled[0].seconds
        print(
            f"{big:,} jobs loaded and scheduled: {s:.2f} s  target < {LOAD_TARGET_S} s  {verdict(s < LOAD_TARGET_S)}"
        )
    print(json_line("store", [r.as_dict() for r in results]))
    return 0


def scale_main(args: argparse.Namespace) -> int:
    from bench import store_scale

    trees = [store_scale.Tree("cronwell", store_scale.HERE)]
    if args.hold_all:  # the same code with every job in memory: the window's own A/B
        hold = (("CRONWELL_LOAD_AHEAD", "0"),)
        trees.append(store_scale.Tree("hold-all", store_scale.HERE, hold, files="cronwell"))
    if args.parent is not None:
        trees.insert(0, store_scale.Tree("parent", args.parent.resolve()))
    with tempfile.TemporaryDirectory(prefix="cronwell-bench-scale-") as tmp:
        folder = Path(tmp) if args.files is None else args.files
        folder.mkdir(parents=True, exist_ok=True)
        figures = store_scale.run(
            folder,
            trees,
            jobs=args.jobs,
            executions=args.executions,
            runs=args.runs,
            requests=args.requests,
            log=sys.stderr,
            daily=args.daily,
        )
    print(store_scale.report(figures, jobs=args.jobs, executions=args.executions))
    print(json_line("store-scale", store_scale.results(figures)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
