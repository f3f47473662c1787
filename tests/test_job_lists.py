"""The job lists built from remembered per-job texts (api/job_lists.py) are byte for
byte what encoding the whole answer at once gives, on the stores that remember (SQLite
by row, MongoDB by BSON bytes, on a real server) and on one that renders every time
(memory), before and after jobs change."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api import job_lists, views
from api.errors import dumps
from engine.model import Job, JobKind, Surface
from engine.triggers import BoundedTrigger, CronTrigger, DateTrigger, IntervalTrigger
from stores.base import Store
from stores.memory import MemoryStore
from stores.sqlite import SqliteStore
from tests.mongo_server import MongoTarget

T0 = datetime(2030, 3, 1, 8, 30, tzinfo=UTC)


def _sqlite(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "cronwell.db")


def _mongo(request: pytest.FixtureRequest) -> Store:
    from stores.mongo import MongoStore

    target: MongoTarget = request.getfixturevalue("mongo")
    name = target.fresh_db()
    request.addfinalizer(lambda: target.drop(name))
    return MongoStore(target.uri, name)


@pytest.fixture(
    params=[
        pytest.param(lambda request, _: MemoryStore(), id="memory"),
        pytest.param(lambda request, tmp_path: _sqlite(tmp_path), id="sqlite"),
        pytest.param(lambda request, _: _mongo(request), id="mongo", marks=pytest.mark.mongo_real),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    factory: Callable[[pytest.FixtureRequest, Path], Store] = request.param
    backend = factory(request, tmp_path)
    backend.open()
    try:
        yield backend
    finally:
        backend.close()


def _jobs() -> list[Job]:
    common: dict[str, Any] = {"created_at": T0, "updated_at": T0}
    return [
        Job(
            id="report:é@1",
            name="bash:/opt/scripts/ré port.sh",
            kind=JobKind.BASH,
            target="/opt/scripts/ré port.sh",
            trigger=DateTrigger(T0 + timedelta(days=1), "Europe/Paris"),
            args=["--full", "ü ✓"],
            surface=Surface.SCRIPTS,
            owner="u1",
            next_run_time=T0 + timedelta(days=1),
            **common,
        ),
        Job(
            id="650000000000000000000001",
            name="Daily Echo Job",
            kind=JobKind.CLASS,
            target="jobs.echo.EchoJob",
            trigger=CronTrigger(minute="0", hour="9", timezone="America/New_York"),
            kwargs={"nested": {"list": [1, 2.5, None, True]}, "text": 'quote " and \\'},
            description="made by the list test",
            owner="u2",
            notify={"on": ["failed"], "webhook": "https://example.com/h", "secret": "s"},
            on_failure=["report:é@1"],
            env={"API_TOKEN": "gAAAA-token"},
            timeout=12.5,
            retries=2,
            history_limit=10,
            next_run_time=T0 + timedelta(hours=1),
            last_run_time=T0 - timedelta(hours=23),
            **common,
        ),
        Job(
            id="650000000000000000000002",
            name="every minute, in a window",
            kind=JobKind.CLASS,
            target="jobs.echo.EchoJob",
            trigger=BoundedTrigger(
                IntervalTrigger(seconds=60, start_date=T0),
                start_date=T0,
                end_date=T0 + timedelta(days=30),
                jitter=2.5,
            ),
            owner="u1",
            paused=True,
            misfire_grace_time=None,
            created_at=T0 + timedelta(seconds=1),
            updated_at=T0 + timedelta(seconds=1),
        ),
    ]


def _whole_scripts(store: Store, owner: str | None) -> str:
    jobs = store.list_jobs(owner)
    return dumps({"count": len(jobs), "jobs": [views.script_job(j) for j in jobs]})


def _whole_scheduler(store: Store, owner: str | None) -> str:
    jobs = store.list_jobs(owner)
    data = [views.scheduler_job(j) for j in jobs]
    return dumps(views.success(job_lists.SCHEDULER_MESSAGE, total=len(jobs), data=data))


def _same_lists(store: Store) -> None:
    for owner in (None, "u1", "u2", "nobody"):
        for _ in range(2):  # the second time from what the store remembered
            assert job_lists.script_jobs(store, owner) == _whole_scripts(store, owner)
            assert job_lists.scheduler_jobs(store, owner) == _whole_scheduler(store, owner)


def test_empty_lists(store: Store) -> None:
    assert job_lists.script_jobs(store, None) == '{"count": 0, "jobs": []}'
    assert job_lists.scheduler_jobs(store, None) == _whole_scheduler(store, None)


def test_lists_are_the_bytes_of_the_whole_answer(store: Store) -> None:
    for job in _jobs():
        store.add_job(job)
    _same_lists(store)


def test_a_changed_job_is_listed_as_it_is_now(store: Store) -> None:
    jobs = _jobs()
    for job in jobs:
        store.add_job(job)
    before = job_lists.scheduler_jobs(store, None), job_lists.script_jobs(store, None)
    paused = store.get_job(jobs[0].id)
    paused.paused, paused.updated_at = True, T0 + timedelta(minutes=1)
    store.update_job(paused)
    # a fire moves next_run_time and last_run_time in the row's own columns
    assert store.claim_fire(jobs[1].id, jobs[1].next_run_time, T0 + timedelta(days=1), [])
    after = job_lists.scheduler_jobs(store, None), job_lists.script_jobs(store, None)
    assert after[0] != before[0] and after[1] != before[1]
    listed = {j["job_id"]: j for j in json.loads(after[1])["jobs"]}
    assert listed[jobs[0].id]["is_paused"] is True
    _same_lists(store)
    store.remove_job(jobs[2].id)
    _same_lists(store)
    assert jobs[2].id not in job_lists.scheduler_jobs(store, None)
