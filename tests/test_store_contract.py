"""The Store contract (stores/base.py), run against every backend.

Plain test functions taking a `store` fixture, as APScheduler's datastore tests do:
memory (the reference), SQLite (a temp file), and MongoDB on two real wire-protocol
servers (tests/conftest.py): `mongo`, a secantusdb one-node replica set, where the store
writes what belongs together in transactions, and `mongo-standalone`, a standalone
secantusdb, where it writes them in order as on a plain `mongod`. Each Mongo case gets a
database of its own. With MONGO_URI set, `mongo` runs on that server instead. Oracle
runs when CRONWELL_ORACLE_DSN is set (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import stores.sql
from engine.errors import (
    DuplicateEmail,
    ExecutionNotFound,
    InvalidInput,
    JobExists,
    JobNotFound,
    ServerNotFound,
    UserNotFound,
)
from engine.ids import new_id
from engine.model import Execution, Job, JobKind, Status, Surface
from engine.triggers import DateTrigger, IntervalTrigger
from stores.base import MAINTENANCE_TASKS, FireClaim, Store
from stores.memory import MemoryStore
from stores.records import Server, User
from tests.mongo_server import MongoTarget

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
ORACLE_DSN = os.environ.get("CRONWELL_ORACLE_DSN", "")


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    from stores.sqlite import SqliteStore

    return SqliteStore(tmp_path / "data" / "cronwell.db")


def _on(server: str) -> Callable[[pytest.FixtureRequest, Path], Store]:
    """A MongoStore on a database of its own on the session's `server` fixture,
    dropped when the test is done (through the server's client: the store may be
    closed by then)."""

    def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
        from stores.mongo import MongoStore

        target: MongoTarget = request.getfixturevalue(server)
        name = target.fresh_db()
        request.addfinalizer(lambda: target.drop(name))
        return MongoStore(target.uri, name)

    return factory


def _oracle_real(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    from stores.oracle import OracleStore

    return OracleStore(
        ORACLE_DSN,
        os.environ.get("CRONWELL_ORACLE_USER", ""),
        os.environ.get("CRONWELL_ORACLE_PASSWORD", ""),
    )


def _wipe(store: Store) -> None:
    """A real Oracle schema outlives a test: delete what it wrote."""
    if store.backend == "oracle":
        from stores.sql import TABLES

        with store._transaction() as cursor:  # type: ignore[attr-defined]
            for table in TABLES.values():
                cursor.execute(f"DELETE FROM {table.name}")


BACKENDS = [
    pytest.param(lambda request, tmp_path: MemoryStore(), id="memory"),
    pytest.param(_sqlite, id="sqlite"),
    pytest.param(_on("mongo"), id="mongo", marks=pytest.mark.mongo_real),
    pytest.param(_on("mongo_standalone"), id="mongo-standalone", marks=pytest.mark.mongo_real),
    pytest.param(
        _oracle_real,
        id="oracle-real",
        marks=[
            pytest.mark.oracle_real,
            pytest.mark.skipif(
                not ORACLE_DSN,
                reason="set CRONWELL_ORACLE_DSN, CRONWELL_ORACLE_USER, CRONWELL_ORACLE_PASSWORD",
            ),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    factory: Callable[[pytest.FixtureRequest, Path], Store] = request.param
    backend = factory(request, tmp_path)
    backend.open()
    _wipe(backend)
    try:
        yield backend
    finally:
        _wipe(backend)
        backend.close()


# -- builders ---------------------------------------------------------------------------
def make_job(
    job_id: str | None = None, *, at: datetime = T0, owner: str | None = "u1", **changes: Any
) -> Job:
    values: dict[str, Any] = {
        "id": job_id or new_id(),
        "name": "nightly report",
        "kind": JobKind.CLASS,
        "target": "jobs.echo.EchoJob",
        "trigger": IntervalTrigger(minutes=5, start_date=at),
        "args": [1, "two", {"three": [3.5, None, True]}],
        "kwargs": {"nested": {"list": [1, 2]}, "text": "é ✓"},
        "description": "made by the contract suite",
        "owner": owner,
        "next_run_time": at + timedelta(minutes=5),
        "created_at": at,
        "updated_at": at,
        "misfire_grace_time": None,
        "timeout": 12.5,
    }
    values.update(changes)
    return Job(**values)


def make_execution(
    job: Job, *, at: datetime = T0, status: Status = Status.RUNNING, **changes: Any
) -> Execution:
    values: dict[str, Any] = {
        "id": new_id(),
        "job_id": job.id,
        "status": status,
        "created_at": at,
        "scheduled_for": at,
        "started_at": at + timedelta(microseconds=7),
        "owner": job.owner,
        "job_name": job.name,
        "job_kind": str(job.kind),
        "job_target": job.target,
    }
    values.update(changes)
    return Execution(**values)


def make_user(email: str, *, at: datetime = T0, user_id: str | None = None) -> User:
    return User(id=user_id or new_id(), name="Ada", email=email, created_at=at, updated_at=at)


def make_server(user_id: str, *, at: datetime = T0) -> Server:
    return Server(
        id=new_id(),
        user_id=user_id,
        name="db1",
        hostname="db1.internal",
        port=5432,
        password_encrypted="gAAAA-token",
        last_check={"tcp": True, "latency_ms": 1.25},
        last_check_at=at,
        created_at=at,
        updated_at=at,
    )


# -- jobs -------------------------------------------------------------------------------
def test_job_round_trips_every_field(store: Store) -> None:
    job = make_job(
        surface=Surface.SCRIPTS, kind=JobKind.BASH, target="/srv/scripts/a.sh", paused=True
    )
    store.add_job(job)
    assert store.get_job(job.id) == job


def test_datetimes_come_back_aware_utc_with_microseconds(store: Store) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2026, 7, 4, 9, 15, 30, 999999, tzinfo=india)
    job = make_job(next_run_time=local, last_run_time=local - timedelta(microseconds=1))
    store.add_job(job)
    got = store.get_job(job.id)
    assert got.next_run_time == local
    assert got.next_run_time is not None and got.next_run_time.utcoffset() == timedelta(0)
    assert got.next_run_time.microsecond == 999999
    assert got.last_run_time == local - timedelta(microseconds=1)
    assert got.created_at.tzinfo is not None


def test_date_trigger_job_without_next_run_time(store: Store) -> None:
    job = make_job(trigger=DateTrigger(T0), next_run_time=None, misfire_grace_time=30.0)
    store.add_job(job)
    got = store.get_job(job.id)
    assert got.next_run_time is None and got.trigger == DateTrigger(T0)
    assert got.misfire_grace_time == 30.0


def test_add_existing_job_raises_unless_replace(store: Store) -> None:
    job = make_job("user-chosen id")
    store.add_job(job)
    execution = make_execution(job)
    store.add_execution(execution)
    with pytest.raises(JobExists):
        store.add_job(make_job("user-chosen id", name="other"))
    assert store.get_job("user-chosen id").name == "nightly report"
    store.add_job(make_job("user-chosen id", name="replaced"), replace=True)
    assert store.get_job("user-chosen id").name == "replaced"
    assert store.get_execution(execution.id) == execution  # executions are kept


def test_replace_keeps_the_run_counters_of_the_kept_executions(store: Store) -> None:
    job = make_job("kept")
    store.add_job(job)
    run = make_execution(job, status=Status.COMPLETED, started_at=T0)
    store.add_execution(run)
    store.finish_execution(run)
    fresh = make_job("kept", name="replaced", next_run_time=None, paused=True)
    store.add_job(fresh, replace=True)
    got = store.get_job("kept")
    assert (got.total_executions, got.last_run_time) == (1, T0)
    fresh.total_executions, fresh.last_run_time = 1, T0
    assert got == fresh  # every other field is the replacement's, None included
    store.add_job(make_job("new", total_executions=3, last_run_time=T0), replace=True)
    assert store.get_job("new").total_executions == 3  # an insert writes what it is given


def test_update_and_remove_job(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    job.paused, job.name, job.next_run_time = True, "renamed", None
    store.update_job(job)
    assert store.get_job(job.id) == job
    execution = make_execution(job)
    store.add_execution(execution)
    store.remove_job(job.id)
    with pytest.raises(JobNotFound):
        store.get_job(job.id)
    assert store.get_execution(execution.id) == execution  # history stays


@pytest.mark.parametrize("call", ["get_job", "remove_job", "update_job"])
def test_missing_job_raises(store: Store, call: str) -> None:
    argument: Any = make_job("ghost") if call == "update_job" else "ghost"
    with pytest.raises(JobNotFound, match="ghost"):
        getattr(store, call)(argument)


def test_returned_objects_are_copies(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    job.kwargs["nested"]["list"].append(99)  # the caller's object after add
    got = store.get_job(job.id)
    assert got.kwargs["nested"]["list"] == [1, 2]
    got.args.append("mutated")
    got.name = "mutated"
    assert store.get_job(job.id).args == [1, "two", {"three": [3.5, None, True]}]
    assert store.list_jobs()[0].name == "nightly report"
    user = make_user("copy@example.com")
    store.add_user(user)
    store.get_user(user.id).email = "changed@example.com"
    assert store.get_user(user.id).email == "copy@example.com"


def test_reading_a_job_again_gives_fresh_copies_and_never_a_stale_one(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    for read in (lambda: store.get_job(job.id), lambda: store.list_jobs()[0]):
        first = read()
        first.args[2]["three"].append("mutated")
        first.kwargs["nested"]["list"].append(99)
        first.kwargs["added"] = True
        again = read()
        assert again.args == [1, "two", {"three": [3.5, None, True]}]
        assert again.kwargs == {"nested": {"list": [1, 2]}, "text": "é ✓"}
    job.name, job.args = "renamed", ["new"]
    store.update_job(job)
    assert (store.get_job(job.id).name, store.list_jobs()[0].args) == ("renamed", ["new"])
    assert store.get_jobs([job.id])[job.id].name == "renamed"


def test_list_jobs_oldest_first_and_by_owner(store: Store) -> None:
    late = make_job("b-late", at=T0 + timedelta(hours=1), owner="u2")
    tie_b = make_job("tie-b", owner="u1")
    tie_a = make_job("tie-a", owner="u1")
    for job in (late, tie_b, tie_a):
        store.add_job(job)
    assert [j.id for j in store.list_jobs()] == ["tie-a", "tie-b", "b-late"]
    assert [j.id for j in store.list_jobs(owner="u2")] == ["b-late"]
    assert store.list_jobs(owner="nobody") == []


@pytest.mark.parametrize("page", [2, 3, 1000])
def test_job_records_are_every_job_once_as_from_record_takes_them(store: Store, page: int) -> None:
    """The start-up load's read: pages of at most `page` records, every job exactly
    once (paused, disabled and unscheduled ones too), each giving back the stored Job;
    the run counters come from their authoritative columns, as get_job's do."""
    jobs = [
        make_job(owner="u1"),
        make_job(owner="u2", paused=True, notify={"on": ["failed"], "webhook": "http://x"}),
        make_job(enabled=False, history_limit=3),
        make_job(trigger=DateTrigger(T0), next_run_time=None),
        make_job(owner=None),
        make_job(owner="u1"),
    ]
    for job in jobs:
        store.add_job(job)
    claimed = jobs[0].next_run_time
    assert store.claim_fire(jobs[0].id, claimed, T0 + timedelta(days=1), [make_execution(jobs[0])])
    pages = list(store.job_records(page))
    assert pages and all(0 < len(p) <= page for p in pages)
    records = [record for p in pages for record in p]
    assert sorted(r["id"] for r in records) == sorted(j.id for j in jobs)
    by_id = {r["id"]: Job.from_record(r) for r in records}
    assert by_id == {j.id: store.get_job(j.id) for j in jobs}
    assert by_id[jobs[0].id].last_run_time == claimed
    assert by_id[jobs[0].id].next_run_time == T0 + timedelta(days=1)


@pytest.mark.parametrize("more", [(), ("last_run_time",)], ids=["start-up", "more"])
def test_job_records_with_fields_hold_those_fields_as_stored(
    store: Store, more: tuple[str, ...]
) -> None:
    """The start-up load asks for some fields only: each record has at least those,
    equal to the stored job's (a field left out reads as the Job's default). The
    start-up's own fields are what SQL stores read from columns (stores/sql_slots.py);
    one field more and they read whole documents."""
    from engine.scheduling.timetable import JOB_DEFAULTS, RECORD_FIELDS

    wanted = (*RECORD_FIELDS, "history_limit", "notify", *more)
    jobs = [
        make_job(owner="u1", max_instances=3, overlap="queue", coalesce=False),
        make_job(owner=None, paused=True, notify={"on": ["failed"], "email": "a@b.c"}),
        make_job(enabled=False, history_limit=5, misfire_grace_time=30.0),
        make_job(trigger=DateTrigger(T0), next_run_time=None),
    ]
    for job in jobs:
        store.add_job(job)
    records = [r for page in store.job_records(2, wanted) for r in page]
    assert sorted(r["id"] for r in records) == sorted(j.id for j in jobs)
    for record in records:
        stored = store.get_job(record["id"]).to_record()
        got = {f: record.get(f, JOB_DEFAULTS.get(f)) for f in wanted}
        assert got == {f: stored[f] for f in wanted}


@pytest.mark.parametrize("page", [2, 1000])
def test_job_rows_are_every_job_once_holding_its_stored_fields(store: Store, page: int) -> None:
    """The start-up load's rows: pages of at most `page`, every job once, each value
    the stored job's (its trigger, notify and next_run_time may be their text)."""
    from engine.interfaces import JOB_ROW_FIELDS

    jobs = [
        make_job(owner="u1", max_instances=3, overlap="queue", coalesce=False),
        make_job(owner=None, paused=True, notify={"on": ["failed"], "email": "a@b.c"}),
        make_job(enabled=False, history_limit=5, misfire_grace_time=None),
        make_job(trigger=DateTrigger(T0), next_run_time=None),
        make_job(trigger=IntervalTrigger(seconds=90, start_date=T0)),
    ]
    for job in jobs:
        store.add_job(job)
    pages = list(store.job_rows(page))
    assert pages and all(0 < len(p) <= page for p in pages)
    rows = [dict(zip(JOB_ROW_FIELDS, row, strict=True)) for p in pages for row in p]
    assert sorted(r["id"] for r in rows) == sorted(j.id for j in jobs)
    for row in rows:
        for name in ("trigger", "notify"):
            if isinstance(row[name], str):
                row[name] = json.loads(row[name])
        if isinstance(row["next_run_time"], str):
            row["next_run_time"] = datetime.fromisoformat(row["next_run_time"])
        stored = store.get_job(row["id"]).to_record()
        assert row == {f: stored[f] for f in JOB_ROW_FIELDS}


def test_count_jobs(store: Store) -> None:
    assert store.count_jobs().total == 0
    store.add_job(make_job(owner="u1"))
    store.add_job(make_job(owner="u1", paused=True))
    store.add_job(make_job(owner="u2", enabled=False))
    counts = store.count_jobs()
    assert (counts.total, counts.enabled, counts.paused) == (3, 2, 1)
    mine = store.count_jobs(owner="u1")
    assert (mine.total, mine.enabled, mine.paused) == (2, 2, 1)


# -- claims -----------------------------------------------------------------------------
def test_claim_fire_moves_the_job_and_writes_executions(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    due = job.next_run_time
    assert due is not None
    fire = make_execution(job, at=due, status=Status.QUEUED)
    assert store.claim_fire(job.id, due, due + timedelta(minutes=5), [fire])
    got = store.get_job(job.id)
    assert got.next_run_time == due + timedelta(minutes=5)
    assert got.last_run_time == due
    assert store.get_execution(fire.id) == fire


def test_claim_fire_with_a_stale_expectation_changes_nothing(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    stale = T0 - timedelta(minutes=5)
    fire = make_execution(job)
    assert not store.claim_fire(job.id, stale, T0 + timedelta(hours=1), [fire])
    assert store.get_job(job.id) == job
    with pytest.raises(ExecutionNotFound):
        store.get_execution(fire.id)
    assert not store.claim_fire(job.id, None, T0, [])  # expected unscheduled, but it is


def test_claim_fire_of_a_missing_job_is_false(store: Store) -> None:
    assert store.claim_fire("ghost", T0, None, [make_execution(make_job("ghost"))]) is False
    assert store.count_executions() == 0


def test_claim_fire_without_executions_keeps_last_run_time(store: Store) -> None:
    job = make_job(last_run_time=T0 - timedelta(days=1))
    store.add_job(job)
    assert store.claim_fire(job.id, job.next_run_time, None, [])
    got = store.get_job(job.id)
    assert got.next_run_time is None and got.last_run_time == T0 - timedelta(days=1)
    assert store.claim_fire(job.id, None, T0, [])  # an unscheduled job is claimed by None
    assert store.get_job(job.id).next_run_time == T0


def test_each_fire_is_claimed_exactly_once_across_threads(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    due = job.next_run_time
    wins: list[bool] = []
    barrier = threading.Barrier(6)

    def engine() -> None:
        barrier.wait()
        wins.append(store.claim_fire(job.id, due, T0 + timedelta(days=1), [make_execution(job)]))

    threads = [threading.Thread(target=engine) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    assert store.count_executions(job_id=job.id) == 1


def test_claim_fires_reports_each_claim(store: Store) -> None:
    a, b = make_job("a"), make_job("b")
    store.add_job(a)
    store.add_job(b)
    due = a.next_run_time
    assert due is not None
    later = due + timedelta(minutes=5)
    fires = [make_execution(a, at=due), make_execution(b, at=due), make_execution(a, at=later)]
    results = store.claim_fires(
        [
            FireClaim("a", due, later, [fires[0]]),
            FireClaim("b", T0, later, [fires[1]]),  # stale: b is due at `due`, not T0
            FireClaim("ghost", due, later, []),
            FireClaim("a", later, None, [fires[2]]),  # a's next fire, after the first claim
        ]
    )
    assert results == [True, False, False, True]
    assert store.get_job("a").next_run_time is None
    assert store.get_job("a").last_run_time == later
    assert store.get_job("b") == b
    assert {e.id for e in store.list_executions()} == {fires[0].id, fires[2].id}
    assert store.claim_fires([]) == []


# -- executions -------------------------------------------------------------------------
def test_execution_round_trip_and_update(store: Store) -> None:
    job = make_job()
    execution = make_execution(
        job, status=Status.QUEUED, started_at=None, return_value={"rows": [1, 2], "ok": True}
    )
    store.add_execution(execution)
    assert store.get_execution(execution.id) == execution
    execution.status, execution.started_at = Status.RUNNING, T0 + timedelta(seconds=1)
    store.update_execution(execution)
    assert store.get_execution(execution.id) == execution
    with pytest.raises(ExecutionNotFound):
        store.update_execution(make_execution(job))
    with pytest.raises(ExecutionNotFound):
        store.get_execution("ghost")


def test_finish_execution_counts_and_moves_last_run_time(store: Store) -> None:
    job = make_job(last_run_time=T0 - timedelta(hours=1))
    store.add_job(job)
    first = make_execution(job, started_at=T0)
    old = make_execution(job, started_at=T0 - timedelta(hours=2))
    for execution in (first, old):
        store.add_execution(execution)
        execution.status, execution.completed_at, execution.output = Status.COMPLETED, T0, "done\n"
        store.finish_execution(execution)
    got = store.get_job(job.id)
    assert got.total_executions == 2
    assert got.last_run_time == T0  # the older start did not move it back
    assert store.get_execution(first.id).output == "done\n"
    with pytest.raises(ExecutionNotFound):
        store.finish_execution(make_execution(job, status=Status.FAILED))
    assert store.get_job(job.id).total_executions == 2


def test_finish_execution_of_a_removed_job(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    execution = make_execution(job)
    store.add_execution(execution)
    store.remove_job(job.id)
    execution.status = Status.CANCELLED
    store.finish_execution(execution)
    assert store.get_execution(execution.id).status == Status.CANCELLED


def test_record_progress_writes_started_and_finished_in_one_call(store: Store) -> None:
    job = make_job(last_run_time=None)
    other = make_job("other", last_run_time=None)
    store.add_job(job)
    store.add_job(other)
    runs = [make_execution(job), make_execution(job), make_execution(other)]
    for run in runs:
        store.add_execution(run)
    running, done, done_other = runs
    running.status, running.started_at = Status.RUNNING, T0
    done.status, done.started_at, done.completed_at = Status.COMPLETED, T0, T0
    done.output = "ok\n"
    done_other.status, done_other.started_at = Status.FAILED, T0 + timedelta(seconds=1)
    done_other.completed_at, done_other.error = T0 + timedelta(seconds=2), "boom"
    ghost = make_execution(job, status=Status.COMPLETED)  # never added: skipped
    store.record_progress([running], [done, ghost, done_other])
    assert store.get_execution(running.id) == running
    assert store.get_execution(done.id) == done
    assert store.get_execution(done_other.id) == done_other
    with pytest.raises(ExecutionNotFound):
        store.get_execution(ghost.id)
    assert (store.get_job(job.id).total_executions, store.get_job(job.id).last_run_time) == (1, T0)
    assert store.get_job(other.id).total_executions == 1
    store.record_progress([], [])  # nothing to write is not an error


def test_get_jobs_returns_the_existing_ones_by_id(store: Store) -> None:
    first, second = make_job("first"), make_job("second", args=[1, "two"])
    store.add_job(first)
    store.add_job(second)
    got = store.get_jobs(["second", "ghost", "first"])
    assert got == {"first": first, "second": second}
    got["first"].args.append("mutated")
    assert store.get_job("first").args == first.args  # the caller's copies
    assert store.get_jobs([]) == {}


def test_finish_execution_counter_is_atomic_under_threads(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    executions = [make_execution(job) for _ in range(40)]
    for execution in executions:
        store.add_execution(execution)
        execution.status = Status.COMPLETED

    def finish(chunk: list[Execution]) -> None:
        for execution in chunk:
            store.finish_execution(execution)

    threads = [threading.Thread(target=finish, args=(executions[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get_job(job.id).total_executions == 40


def _finish_one_run(store: Store, job: Job, started_at: datetime) -> None:
    run = make_execution(job, started_at=started_at)
    store.add_execution(run)
    run.status = Status.COMPLETED
    store.finish_execution(run)


def test_update_job_with_a_stale_count_does_not_lower_it(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    stale = store.get_job(job.id)  # read before the runs finish, as a modify does
    for _ in range(3):
        _finish_one_run(store, job, T0)
    stale.name, stale.total_executions = "renamed", 0
    store.update_job(stale)
    got = store.get_job(job.id)
    assert (got.name, got.total_executions) == ("renamed", 3)
    stale.total_executions = 99  # nor can an update raise it: finish_execution owns it
    store.update_job(stale)
    assert store.get_job(job.id).total_executions == 3


def test_update_job_with_a_stale_last_run_time_does_not_move_it_back(store: Store) -> None:
    job = make_job(last_run_time=T0 - timedelta(days=1))
    store.add_job(job)
    stale = store.get_job(job.id)
    _finish_one_run(store, job, T0)
    store.update_job(stale)
    assert store.get_job(job.id).last_run_time == T0
    stale.last_run_time = None
    store.update_job(stale)  # None (never ran) is just as stale
    assert store.get_job(job.id).last_run_time == T0


def test_interleaved_finishes_and_updates_lose_no_count(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    runs = 200
    executions = [make_execution(job, started_at=T0 + timedelta(seconds=i)) for i in range(runs)]
    for execution in executions:
        store.add_execution(execution)
        execution.status = Status.COMPLETED
    start = threading.Barrier(2)

    def finish() -> None:
        start.wait()
        for execution in executions:
            store.finish_execution(execution)

    def update() -> None:
        start.wait()
        for i in range(runs):
            current = store.get_job(job.id)  # the engine's read-modify-write of a modify
            current.name = f"renamed {i}"
            store.update_job(current)

    threads = [threading.Thread(target=finish), threading.Thread(target=update)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.get_job(job.id)
    assert (got.total_executions, got.name) == (runs, f"renamed {runs - 1}")
    assert got.last_run_time == executions[-1].started_at


def _history(store: Store) -> dict[str, list[Execution]]:
    """Two jobs, two owners, mixed statuses, including a created_at tie."""
    a, b = make_job("a", owner="u1"), make_job("b", owner="u2")
    made: dict[str, list[Execution]] = {"a": [], "b": []}
    statuses = [Status.COMPLETED, Status.FAILED, Status.COMPLETED, Status.RUNNING, Status.COMPLETED]
    for i, status in enumerate(statuses):
        for job in (a, b):
            execution = make_execution(job, at=T0 + timedelta(seconds=i), status=status)
            store.add_execution(execution)
            made[job.id].append(execution)
    return made


def test_list_executions_newest_first_with_filters_and_paging(store: Store) -> None:
    made = _history(store)
    everything = store.list_executions()
    assert len(everything) == 10
    keys = [(e.created_at, e.id) for e in everything]
    assert keys == sorted(keys, reverse=True)  # ties broken by id, descending
    newest_a = sorted(made["a"], key=lambda e: e.created_at, reverse=True)
    assert [e.id for e in store.list_executions(job_id="a")] == [e.id for e in newest_a]
    assert [e.id for e in store.list_executions(job_id="a", limit=2, offset=1)] == [
        e.id for e in newest_a[1:3]
    ]
    assert [e.id for e in store.list_executions(owner="u2", status=Status.FAILED)] == [
        made["b"][1].id
    ]
    assert len(store.list_executions(status=Status.COMPLETED, limit=4)) == 4
    assert store.list_executions(job_id="a", owner="u2") == []
    assert store.list_executions(limit=5, offset=10) == []
    assert store.list_executions(limit=0) == []


def test_count_executions_and_stats(store: Store) -> None:
    _history(store)
    assert store.count_executions() == 10
    assert store.count_executions(job_id="a") == 5
    assert store.count_executions(owner="u1", status=Status.COMPLETED) == 3
    assert store.count_executions(job_id="a", owner="u1", status=Status.RUNNING) == 1
    assert store.execution_stats() == {"completed": 6, "failed": 2, "running": 2}
    assert store.execution_stats(owner="u2") == {"completed": 3, "failed": 1, "running": 1}
    assert store.execution_stats(owner="nobody") == {}


def test_abandon_running_marks_only_running(store: Store) -> None:
    job = make_job()
    kept = {
        s: make_execution(job, status=s)
        for s in (Status.COMPLETED, Status.SCHEDULED, Status.QUEUED)
    }
    left = [make_execution(job, status=Status.RUNNING), make_execution(job, status=Status.RUNNING)]
    store.add_job(job)
    for execution in [*kept.values(), *left]:
        store.add_execution(execution)
    now = T0 + timedelta(hours=1)
    marked = store.abandon_running(now, "the service stopped while this ran")
    assert sorted(e.id for e in marked) == sorted(e.id for e in left)
    for execution in marked:  # returned as written, for the engine to announce
        assert execution.status == Status.ABANDONED and execution.completed_at == now
        assert execution == store.get_execution(execution.id)
    for execution in left:
        got = store.get_execution(execution.id)
        assert got.status == Status.ABANDONED
        assert got.completed_at == now and got.error == "the service stopped while this ran"
        assert got.started_at == execution.started_at
    for execution in kept.values():
        assert store.get_execution(execution.id) == execution
    assert store.abandon_running(now, "again") == []
    assert store.get_job(job.id).total_executions == 0


def test_take_over_hands_back_queued_executions_with_a_note(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    queued = [
        make_execution(job, at=T0 + timedelta(seconds=s), status=Status.QUEUED, started_at=None)
        for s in (2, 0, 1)
    ]
    queued[0].output = "[cronwell] coalesced 2 fire times\n"
    others = [make_execution(job, status=s) for s in (Status.RUNNING, Status.SCHEDULED)]
    others.append(make_execution(job, status=Status.COMPLETED))
    for execution in [*queued, *others]:
        store.add_execution(execution)
    taken = store.take_over(None, None, "[cronwell] queued again\n")
    oldest_first = sorted(queued, key=lambda e: e.created_at)
    assert [e.id for e in taken] == [e.id for e in oldest_first]
    for execution, got in zip(oldest_first, taken, strict=True):
        assert (
            got.status == Status.QUEUED
            and got.output == execution.output + "[cronwell] queued again\n"
        )
        assert (got.scheduled_for, got.attempt, got.reason) == (
            execution.scheduled_for,
            execution.attempt,
            execution.reason,
        )
        assert store.get_execution(got.id) == got  # the note is stored, nothing else
    for execution in others:
        assert store.get_execution(execution.id) == execution
    assert store.count_executions() == len(queued) + len(others)  # nothing new was made
    taken[0].output = "changed by the caller"
    assert store.get_execution(taken[0].id).output != "changed by the caller"


def test_an_unstarted_execution_ended_by_recovery_keeps_the_counters(store: Store) -> None:
    job = make_job()
    store.add_job(job)
    queued = make_execution(job, status=Status.QUEUED, started_at=None)
    store.add_execution(queued)
    (taken,) = store.take_over(None, None, "[cronwell] queued again\n")
    taken.status, taken.completed_at, taken.error = Status.MISSED, T0, "missed: too late"
    store.update_execution(taken)
    assert store.get_execution(queued.id).status == Status.MISSED
    assert store.take_over(None, None, "again\n") == []
    assert store.get_job(job.id).total_executions == 0


def test_delete_executions_before_keeps_recent_and_active(store: Store) -> None:
    job = make_job()
    old_done = make_execution(job, at=T0 - timedelta(days=40), status=Status.COMPLETED)
    old_running = make_execution(job, at=T0 - timedelta(days=40), status=Status.RUNNING)
    recent = make_execution(job, at=T0, status=Status.FAILED)
    for execution in (old_done, old_running, recent):
        store.add_execution(execution)
    assert store.delete_executions_before(T0 - timedelta(days=30)) == 1
    assert {e.id for e in store.list_executions()} == {old_running.id, recent.id}


# -- users and servers ------------------------------------------------------------------
def test_users_keep_emails_unique_ignoring_case(store: Store) -> None:
    ada = make_user("Ada@Example.com")
    store.add_user(ada)
    with pytest.raises(DuplicateEmail):
        store.add_user(make_user("ada@example.COM"))
    store.add_user(ada)  # the same user again is not a duplicate of itself
    bob = make_user("bob@example.com", at=T0 + timedelta(seconds=1))
    store.add_user(bob)
    bob.email = "ADA@example.com"
    with pytest.raises(DuplicateEmail):
        store.update_user(bob)
    assert store.get_user(bob.id).email == "bob@example.com"
    bob.email, bob.role = "robert@example.com", "admin"
    store.update_user(bob)
    assert store.get_user(bob.id) == bob
    assert [u.id for u in store.list_users()] == [ada.id, bob.id]
    store.delete_user(ada.id)
    store.add_user(make_user("ada@example.com"))  # the email is free again


@pytest.mark.parametrize("call", ["get_user", "delete_user", "update_user"])
def test_missing_user_raises(store: Store, call: str) -> None:
    argument: Any = (
        make_user("x@example.com", user_id="ghost") if call == "update_user" else "ghost"
    )
    with pytest.raises(UserNotFound, match="ghost"):
        getattr(store, call)(argument)


def test_servers_by_user(store: Store) -> None:
    first = make_server("u1")
    second = make_server("u1", at=T0 + timedelta(seconds=1))
    other = make_server("u2")
    for server in (second, other, first):
        store.add_server(server)
    assert store.get_server(first.id) == first
    assert [s.id for s in store.list_servers("u1")] == [first.id, second.id]
    assert len(store.list_servers()) == 3
    first.status, first.last_check = "up", {"http": 200}
    store.update_server(first)
    assert store.get_server(first.id) == first
    store.delete_server(first.id)
    assert [s.id for s in store.list_servers("u1")] == [second.id]


@pytest.mark.parametrize("call", ["get_server", "delete_server", "update_server"])
def test_missing_server_raises(store: Store, call: str) -> None:
    argument: Any = make_server("u1") if call == "update_server" else "ghost"
    with pytest.raises(ServerNotFound):
        getattr(store, call)(argument)


# -- whole collections ------------------------------------------------------------------
def test_export_every_collection_without_secrets(store: Store) -> None:
    user = make_user("export@example.com")
    server = make_server(user.id)
    job = make_job(owner=user.id)
    store.add_user(user)
    store.add_server(server)
    store.add_job(job)
    store.add_execution(make_execution(job))
    exported = {
        name: list(store.export(name)) for name in ("users", "servers", "jobs", "executions")
    }
    assert [r["email"] for r in exported["users"]] == ["export@example.com"]
    assert exported["servers"][0]["hostname"] == "db1.internal"
    assert "password_encrypted" not in exported["servers"][0]
    assert (
        exported["jobs"][0]["id"] == job.id
        and exported["jobs"][0]["next_run_time"] == job.next_run_time
    )
    assert len(exported["executions"]) == 1
    with pytest.raises(InvalidInput):
        list(store.export("passwords"))


@pytest.mark.parametrize("count", [8, 11])
def test_export_streams_past_one_page(
    store: Store, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores.sql, "EXPORT_PAGE", 4)  # SQL stores page by id; 8 ends on a page
    job = make_job()
    for i in range(count):
        store.add_execution(make_execution(job, at=T0 + timedelta(microseconds=i)))
    ids = [r["id"] for r in store.export("executions")]
    assert len(ids) == len(set(ids)) == count


@pytest.mark.parametrize("task", MAINTENANCE_TASKS)
def test_maintenance_runs_every_task(store: Store, task: str) -> None:
    store.add_job(make_job())
    result = store.maintenance(task)
    assert result["task"] == task and result["backend"] == store.backend
    assert store.count_jobs().total == 1  # still usable afterwards


def test_maintenance_rejects_unknown_tasks(store: Store) -> None:
    with pytest.raises(InvalidInput):
        store.maintenance("drop_everything")


def test_close_is_safe_twice(store: Store) -> None:
    store.close()
    store.close()


# -- SQLite only ------------------------------------------------------------------------
def test_sqlite_data_survives_close_and_open(tmp_path: Path) -> None:
    from stores.sqlite import SqliteStore

    path = tmp_path / "nested" / "folders" / "cronwell.db"
    first = SqliteStore(path)
    first.open()
    job = make_job()
    first.add_job(job)
    execution = make_execution(job)
    first.add_execution(execution)
    first.close()
    assert path.is_file()
    second = SqliteStore(path)
    second.open()
    try:
        assert second.get_job(job.id) == job
        assert second.get_execution(execution.id) == execution
        with closing(sqlite3.connect(path)) as raw:  # WAL is a property of the file
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        second.close()


def test_sqlite_concurrent_writes_from_many_threads(tmp_path: Path) -> None:
    from stores.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "cronwell.db")
    store.open()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                job = make_job(f"w{n}-{i}")
                store.add_job(job)
                execution = make_execution(job)
                store.add_execution(execution)
                execution.status = Status.COMPLETED
                store.finish_execution(execution)
                store.list_executions(job_id=job.id)
        except BaseException as exc:  # surfaced below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert store.count_jobs().total == 300
        assert store.execution_stats() == {"completed": 300}
        assert all(j.total_executions == 1 for j in store.list_jobs())
    finally:
        store.close()


def test_sqlite_reads_back_documents_only_json_can_parse(tmp_path: Path) -> None:
    """Job docs are parsed with orjson, which refuses Infinity and integers past 64 bits
    that json.dumps writes; those documents still come back (the json fallback)."""
    from stores.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "data" / "cronwell.db")
    store.open()
    try:
        job = make_job("odd", args=[2**70, float("inf")], kwargs={"x": -float("inf")})
        store.add_job(job)
        assert store.get_job("odd").args == [2**70, float("inf")]
        assert store.list_jobs()[0].kwargs == {"x": -float("inf")}
    finally:
        store.close()


# -- API keys and the audit trail ----------------------------------------------------------
def _key(user_id: str, n: int, **changes: Any) -> Any:
    from stores.records import ApiKey

    values: dict[str, Any] = {
        "id": new_id(),
        "user_id": user_id,
        "key_hash": f"{n:064x}",
        "prefix": f"cw_{n:05d}",
        "name": f"key {n}",
        "created_at": T0 + timedelta(seconds=n),
    }
    values.update(changes)
    return ApiKey(**values)


def test_api_keys_are_found_by_hash_listed_and_revoked(store: Store) -> None:
    from engine.errors import ApiKeyNotFound

    assert store.has_api_keys() is False
    assert store.find_api_key("0" * 64) is None
    first, second, other = _key("u1", 1), _key("u1", 2), _key("u2", 3)
    for key in (second, first, other):
        store.add_api_key(key)
    assert store.has_api_keys() is True
    found = store.find_api_key(first.key_hash)
    assert found == first and found is not first
    assert [k.id for k in store.list_api_keys("u1")] == [first.id, second.id]
    assert [k.id for k in store.list_api_keys()] == [first.id, second.id, other.id]
    assert store.get_api_key(other.id) == other
    store.touch_api_key(first.id, T0 + timedelta(hours=1))
    store.touch_api_key("missing", T0)  # ignored
    assert store.get_api_key(first.id).last_used_at == T0 + timedelta(hours=1)
    store.revoke_api_key(first.id, T0 + timedelta(hours=2))
    store.revoke_api_key(first.id, T0 + timedelta(hours=3))  # the first revocation stays
    revoked = store.find_api_key(first.key_hash)
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=2)
    assert revoked.last_used_at == T0 + timedelta(hours=1)
    assert [k.id for k in store.list_api_keys("u1")] == [second.id]
    with pytest.raises(ApiKeyNotFound):
        store.revoke_api_key("missing", T0)
    with pytest.raises(ApiKeyNotFound):
        store.get_api_key("missing")
    for key in (second, other):
        store.revoke_api_key(key.id, T0)
    assert store.list_api_keys() == []
    assert store.has_api_keys() is True  # revoked keys keep the service closed


def test_an_api_key_hash_is_unique(store: Store) -> None:
    from engine.errors import StoreError

    store.add_api_key(_key("u1", 7))
    with pytest.raises(StoreError):
        store.add_api_key(_key("u2", 7))
    assert len(store.list_api_keys()) == 1


def _entry(n: int, user_id: str | None, **changes: Any) -> Any:
    from stores.records import AuditEntry

    values: dict[str, Any] = {
        "id": f"a{n:04d}",
        "created_at": T0 + timedelta(minutes=n),
        "method": "POST",
        "path": f"/api/scheduler/jobs/{n}",
        "status": 200,
        "user_id": user_id,
        "key_id": None if user_id is None else f"k-{user_id}",
        "resource_id": str(n),
        "client": "127.0.0.1",
    }
    values.update(changes)
    return AuditEntry(**values)


def test_audit_entries_newest_first_filtered_paged_and_pruned(store: Store) -> None:
    entries = [_entry(n, "u1" if n % 2 else "u2") for n in range(10)]
    entries.append(_entry(10, None, method="DELETE", status=404))
    store.add_audit_entries(entries[:4])
    store.add_audit_entries(entries[4:])
    store.add_audit_entries([])
    listed = store.list_audit_entries(limit=100)
    assert [e.id for e in listed] == [e.id for e in reversed(entries)]
    assert listed[0] == entries[10] and listed[0].user_id is None and listed[0].status == 404
    assert store.count_audit_entries() == 11
    u1 = store.list_audit_entries(user_id="u1", limit=2, offset=1)
    assert [e.id for e in u1] == ["a0007", "a0005"]
    assert store.count_audit_entries(user_id="u1") == 5
    since = T0 + timedelta(minutes=8)
    assert [e.id for e in store.list_audit_entries(since=since)] == ["a0010", "a0009", "a0008"]
    assert store.count_audit_entries(user_id="u2", since=since) == 1
    assert store.list_audit_entries(limit=0) == []
    assert store.delete_audit_before(T0 + timedelta(minutes=5)) == 5
    assert store.count_audit_entries() == 6
    assert store.list_audit_entries(limit=1)[0].created_at == T0 + timedelta(minutes=10)


def test_a_key_is_found_with_its_user_in_one_call(store: Store) -> None:
    user = User(id="u1", name="One", email="one@example.com", role="admin", created_at=T0)
    store.add_user(user)
    key = _key("u1", 11)
    store.add_api_key(key)
    store.add_api_key(_key("gone", 12))
    from stores.records import KeyOwner

    assert store.find_key_owner(key.key_hash) == KeyOwner(
        key.id, key.key_hash, "u1", "admin", False, None
    )
    assert store.find_key_owner(f"{12:064x}") is None  # its user does not exist
    assert store.find_key_owner("f" * 64) is None
    store.touch_api_key(key.id, T0 + timedelta(seconds=5))
    store.revoke_api_key(key.id, T0)
    user.role = "user"
    store.update_user(user)
    again = store.find_key_owner(key.key_hash)
    assert again == KeyOwner(key.id, key.key_hash, "u1", "user", True, T0 + timedelta(seconds=5))
