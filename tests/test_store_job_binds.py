"""How a job write binds its row (the loop thread pays for each of these per request):
the one-format time text says what isoformat said, SQLite's whole-row job writes bind
by position in the table's column order, and a statement that is not a whole-row write
is refused rather than bound wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.triggers import CronTrigger, DateTrigger
from stores.codec import time_text
from stores.sql import JOBS, TABLES
from stores.sqlite import JOB_ROW_WRITES, SqliteDialect, SqliteStore
from tests.test_store_contract import T0, make_job


def isoformat_text(value: datetime) -> str:
    """What time text was before: the UTC isoformat, its offset cut for a Z."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "Z"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 2, 17, 15, tzinfo=UTC),
        datetime(2026, 12, 2, 17, 15, 0, 1, tzinfo=UTC),
        datetime(1, 1, 1, 0, 0, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 2, 30, 7, 120, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 6, 1, 23, 0, tzinfo=timezone(timedelta(hours=-12))),
    ],
)
def test_time_text_is_what_isoformat_gave(moment: datetime) -> None:
    assert time_text(moment) == isoformat_text(moment)


def test_a_job_row_is_built_in_the_tables_column_order() -> None:
    # SQLite's job writes bind this row's values by position
    job = make_job("j", trigger=CronTrigger(minute="*/5"))
    assert tuple(JOBS.row(job)) == JOBS.names


def test_whole_row_writes_bind_by_position_and_nothing_else_does(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        for name in JOB_ROW_WRITES:
            sql = store._sql[name]
            assert ":" not in sql.split("VALUES", 1)[1].split(")", 1)[0], sql
            assert sql.count("?") == len(JOBS.names)
        assert ":id" in store._sql["update_jobs"]  # updates still bind by name
    finally:
        store.close()


def test_by_position_refuses_a_statement_that_is_not_a_whole_row() -> None:
    dialect = SqliteDialect()
    table = TABLES["jobs"]
    names = ", ".join(":" + n for n in table.names)
    whole = f"INSERT INTO {table.name} ({', '.join(table.names)}) VALUES ({names})"
    assert dialect.by_position(whole, table).count("?") == len(table.names)
    with pytest.raises(ValueError):
        dialect.by_position(whole.replace(", :doc", ""), table)  # a column short
    with pytest.raises(ValueError):
        dialect.by_position(whole + " WHERE owner = :owner", table)  # another bind


def test_insert_and_replace_by_position_read_back_equal(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.open()
    try:
        job = make_job("j", trigger=DateTrigger(T0 + timedelta(days=1)))
        store.add_job(job)
        assert store.get_job("j") == job
        changed = make_job("j", trigger=CronTrigger(hour="3"), name="other")
        store.add_job(changed, replace=True)
        assert store.get_job("j") == changed
    finally:
        store.close()
