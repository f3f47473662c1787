"""Fill a SQLite file with many jobs or executions fast, through the store's own schema.

    python bench/store_fill.py jobs|executions PATH COUNT [--tree TREE] [--daily]

The store opens the file first (so its tables, indexes and whatever else its schema
makes exist, exactly as the service would find them), then rows built by the store's
own `Table.row` are inserted in large transactions with `executemany`: the bench tests
the service's loading, not the filler's. `--tree` puts another checkout's packages
first on the path (the parent commit, for a same-run A/B), so its schema is the one
made. Run as a script by path for that reason: it imports nothing from `bench`.

Jobs: scheduler-surface job-class jobs of 10 users on 1,440 daily cron expressions
(one per minute of the day, in a month months away: real fleets share a few
schedules, and nothing fires while start-up is measured). With `--daily` the same
1,440 expressions fire every day, so the jobs' next fire times spread over the coming
24 hours, a minute's share of them due in each minute (what a load window holds). Executions: 1,000 jobs of 10
users with COUNT / 1,000 executions each, created over the last 30 days, 90% completed,
the rest failed, timed out, missed or skipped.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

#: rows per transaction
CHUNK = 20_000
USERS = 10
EXECUTION_JOBS = 1_000
#: statuses of the filled executions, each repeated by its share in 100
STATUS_MIX = (("completed", 90), ("failed", 6), ("timeout", 2), ("missed", 1), ("skipped", 1))


def user_id(n: int) -> str:
    return f"{0xA0000000 + n:08x}{'0' * 16}"


def job_id(n: int) -> str:
    return f"{0xB0000000:08x}{n:016x}"


def execution_id(n: int) -> str:
    return f"{0xC0000000:08x}{n:016x}"


def far_month(now: datetime) -> int:
    return (now.month + 4 - 1) % 12 + 1


def make_jobs(count: int, now: datetime, daily: bool = False) -> Any:
    """Yield `count` Jobs; 1,440 shared triggers and their next fire times."""
    from engine.model import Job, JobKind
    from engine.triggers import CronTrigger

    month = far_month(now)
    if daily:
        triggers = [CronTrigger(m % 60, m // 60) for m in range(1440)]
    else:
        triggers = [CronTrigger(m % 60, m // 60, 1, month) for m in range(1440)]
    nexts = [t.next_fire_time(now) for t in triggers]
    for i in range(count):
        spec = i % 1440
        yield Job(
            id=job_id(i),
            name=f"scale job {i}",
            kind=JobKind.CLASS,
            target="jobs.echo.EchoJob",
            trigger=triggers[spec],
            args=[i],
            kwargs={"message": "hello"},
            owner=user_id(i % USERS),
            next_run_time=nexts[spec],
            created_at=now,
            updated_at=now,
        )


def make_executions(count: int, now: datetime) -> Any:
    from engine.model import Execution, Status

    statuses = [Status(s) for s, share in STATUS_MIX for _ in range(share)]
    draw = random.Random(17).randrange  # the same history every run
    span = timedelta(days=30) / max(count, 1)
    start = now - timedelta(days=30)
    for i in range(count):
        job = i % EXECUTION_JOBS
        at = start + span * i
        status = statuses[draw(100)]
        yield Execution(
            id=execution_id(i),
            job_id=job_id(job),
            status=status,
            created_at=at,
            scheduled_for=at,
            started_at=at,
            completed_at=at + timedelta(seconds=1),
            output="ok\n",
            exit_code=0 if status == Status.COMPLETED else 1,
            owner=user_id(job % USERS),
            job_name=f"scale job {job}",
            job_kind="class",
            job_target="jobs.echo.EchoJob",
            node="bench",
        )


def fill(kind: str, path: Path, count: int, daily: bool = False) -> dict[str, Any]:
    from stores.records import User
    from stores.sql import EXECUTIONS, JOBS
    from stores.sql import USERS as USER_TABLE
    from stores.sqlite import SqliteStore

    now = datetime.now(UTC).replace(microsecond=0)
    store = SqliteStore(path)
    store.open()  # the store's own schema, as the service would find it
    with store._connection() as db:  # a filler's connection: fast, not durable
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-262144")
    began = time.perf_counter()
    try:
        users = [User(user_id(n), f"user {n}", f"user{n}@example.com") for n in range(USERS)]
        jobs = make_jobs(count if kind == "jobs" else EXECUTION_JOBS, now, daily)
        batches: list[tuple[str, Any, Any]] = [
            ("insert_users", USER_TABLE, users),
            ("insert_jobs", JOBS, jobs),
        ]
        if kind == "executions":
            batches.append(("insert_executions", EXECUTIONS, make_executions(count, now)))
        for statement, table, records in batches:
            rows: list[Any] = []
            # the store's own binds: its job writes may take a row by position
            binds: Callable[[dict[str, Any]], Any] = (
                store._job_binds if table is JOBS else _as_named
            )
            for record in records:
                rows.append(binds(table.row(record)))
                if len(rows) >= CHUNK:
                    _insert(store, statement, rows)
                    rows = []
            if rows:
                _insert(store, statement, rows)
        with store._connection() as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    return {"kind": kind, "count": count, "seconds": round(time.perf_counter() - began, 2)}


def _as_named(row: dict[str, Any]) -> dict[str, Any]:
    """A row of a table whose writes bind by name: the row itself, not a copy."""
    return row


def _insert(store: Any, statement: str, rows: list[Any]) -> None:
    with store._transaction() as cursor:
        store._execute_many(cursor, store._sql[statement], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("jobs", "executions"))
    parser.add_argument("path", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("--tree", type=Path, help="the checkout whose store to use")
    parser.add_argument("--daily", action="store_true", help="jobs fire every day")
    args = parser.parse_args(argv)
    tree = args.tree if args.tree is not None else Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(tree.resolve()))
    print(fill(args.kind, args.path, args.count, args.daily), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
