"""The start-up load from rows (`Timetable.put_rows`) makes what the load from records
(`put_records`) makes of the same stored jobs: slot by slot, value and type, the same
heap order and the same shared triggers, and shows the observers the same limits and
notify settings. Run on the memory store's rows (values as records hold them) and on
SQLite's (trigger, notify and time as stored text), so both forms of a row are read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.model import Job
from engine.scheduling.timetable import RECORD_FIELDS, ROW_OBSERVED_FIELDS, JobSlot, Timetable
from engine.triggers import CronTrigger, DateTrigger
from stores.base import Store
from stores.memory import MemoryStore
from stores.sqlite import SqliteStore
from tests.test_sqlite_slot_columns import varied_jobs
from tests.test_store_contract import T0, make_job


def many_jobs() -> list[Job]:
    """The slot-column tests' varied jobs and more: shared triggers and fire times,
    a fire time in the past, an integer grace, a job that fired its last."""
    jobs = varied_jobs()
    shared = CronTrigger(minute="*/5")
    for number in range(6):
        jobs.append(
            make_job(
                f"shared{number}",
                trigger=shared,
                next_run_time=T0 + timedelta(minutes=5 * (number % 2)),
                misfire_grace_time=30 if number == 3 else 60.0,
                history_limit=number or None,
            )
        )
    jobs.append(make_job("late", next_run_time=T0 - timedelta(hours=3)))
    jobs.append(make_job("done", trigger=DateTrigger(T0), next_run_time=None))
    return jobs


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "j.db")
    made.open()
    try:
        for job in many_jobs():
            made.add_job(job)
        yield made
    finally:
        made.close()


def by_records(store: Store) -> tuple[Timetable, int, dict[str, dict[str, Any]]]:
    """The load the old way: records, every one shown to the observer."""
    table, seen = Timetable(), {}
    wanted = (*RECORD_FIELDS, *ROW_OBSERVED_FIELDS)

    def records() -> Iterator[dict[str, Any]]:
        for page in store.job_records(3, wanted):
            for record in page:
                if any(record.get(name) is not None for name in ROW_OBSERVED_FIELDS):
                    seen[record["id"]] = {n: record.get(n) for n in ("id", *ROW_OBSERVED_FIELDS)}
                yield record

    return table, table.put_records(records()), seen


def by_rows(store: Store) -> tuple[Timetable, int, dict[str, dict[str, Any]]]:
    table, seen = Timetable(), {}

    def observe(record: dict[str, Any]) -> None:
        assert record["id"] not in seen
        seen[record["id"]] = record

    return table, table.put_rows(store.job_rows(3), observe), seen


def drained(table: Timetable) -> list[tuple[str, float | None]]:
    order = []
    while (due := table.next_fire_ts()) is not None:
        slot = table.pop_due(due)
        assert isinstance(slot, JobSlot)
        order.append((slot.id, due))
    return order


def test_rows_make_the_slots_records_make(store: Store) -> None:
    old, old_count, _ = by_records(store)
    new, new_count, _ = by_rows(store)
    assert new_count == old_count == len(old.jobs) == 11
    assert set(new.jobs) == set(old.jobs)
    for job_id, slot in new.jobs.items():
        for name in JobSlot.__slots__:
            mine, theirs = getattr(slot, name), getattr(old.jobs[job_id], name)
            assert (mine, type(mine)) == (theirs, type(theirs)), (job_id, name)
    assert new.jobs["shared0"].trigger is new.jobs["shared5"].trigger
    assert new.jobs["shared0"].next_run_time is new.jobs["shared2"].next_run_time
    assert new.jobs["shared0"].target is new.jobs["shared1"].target  # interned
    assert new.jobs["shared0"].owner is new.jobs["late"].owner
    assert drained(new) == drained(old)


def test_rows_show_the_observer_what_records_would(store: Store) -> None:
    _, _, old = by_records(store)
    _, _, new = by_rows(store)
    assert new == old
    assert new["notified"]["notify"] == {
        "on": ["failed"],
        "webhook": "http://127.0.0.1:9/hook",
        "secret": "s",
    }
    assert {"paused", "shared0", "done"}.isdisjoint(new)


def test_rows_of_jobs_that_will_not_fire_drop_their_slots() -> None:
    """A reload over a table that already holds slots: the rows of jobs now paused,
    disabled or finished take theirs off, as `put_record` does."""
    store = MemoryStore()
    jobs = [make_job(f"j{n}") for n in range(4)]
    for job in jobs:
        store.add_job(job)
    table = Timetable()
    assert table.put_rows(store.job_rows()) == 4
    jobs[0].paused, jobs[1].enabled, jobs[2].next_run_time = True, False, None
    for job in jobs[:3]:
        store.update_job(job)
    assert table.put_rows(store.job_rows()) == 1
    assert set(table.jobs) == {"j3"} and [i for i, _ in drained(table)] == ["j3"]


def test_a_fleet_sharing_a_trigger_that_no_longer_parses_is_left_out_in_a_few_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """200 jobs share a stored trigger text an older release wrote and this one refuses;
    the good job beside them loads, the log names the first LEFT_OUT_LOGGED and counts
    the rest, and the bad text is parsed once, not once a job."""
    from engine.scheduling import timetable as timetable_module

    bad = '{"kind": "cron", "minute": "5", "day": "*"}'  # "day": not a cron field here
    good = '{"kind": "cron", "minute": "5"}'
    due = "2026-12-02T10:05:00+00:00"
    fields = ("job", "class", "jobs.noop", None)
    tail = (due, True, False, 60.0, True, 1, "skip", None, None)
    rows = [(f"bad{n}", *fields, bad, *tail) for n in range(200)]
    rows.append(("good", *fields, good, *tail))
    parsed: list[Any] = []
    table = Timetable()
    real = table._trigger_of

    def counting(spec: Any) -> Any:
        parsed.append(spec)
        return real(spec)

    table._trigger_of = counting  # type: ignore[method-assign]
    assert table.put_rows([rows]) == 1
    assert sorted(table.jobs) == ["good"]
    assert len(parsed) == 2  # the bad text once, the good one once
    lines = [r.getMessage() for r in caplog.records if "scheduled" in r.getMessage()]
    assert len(lines) == timetable_module.LEFT_OUT_LOGGED + 1
    assert lines[-1].startswith("200 jobs in all cannot be scheduled")


def test_a_bad_time_leaves_out_only_its_own_job_not_others_of_its_trigger() -> None:
    """Two jobs with one date trigger text (date triggers are not kept between rows):
    the first one's stored time no longer parses, the second's does, and it loads."""
    spec = '{"kind": "date", "run_date": "2026-12-02T10:05:00+00:00"}'
    tail = (True, False, 60.0, True, 1, "skip", None, None)
    rows = [
        ("bad-time", "job", "class", "jobs.noop", None, spec, "soon", *tail),
        ("good", "job", "class", "jobs.noop", None, spec, "2026-12-02T10:05:00+00:00", *tail),
    ]
    table = Timetable()
    assert table.put_rows([rows]) == 1
    assert sorted(table.jobs) == ["good"]
