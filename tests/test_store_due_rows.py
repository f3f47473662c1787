"""The reads a load window makes (engine/scheduling/window.py), on every store: the
start's `job_rows(due_by=...)` gives what is due by then and what the observers learn
from, and `due_job_rows` pages through a window in (next_run_time, id) order, ties
across a page boundary included, without skipping or repeating a job."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.interfaces import JOB_ROW_FIELDS
from engine.model import Job
from stores.base import Store
from tests.test_store_contract import T0, make_job
from tests.test_store_contract import store as store  # the fixture

ID_AT = JOB_ROW_FIELDS.index("id")


def add(store: Store, job_id: str, minutes: float | None, **fields: object) -> Job:
    when = None if minutes is None else T0 + timedelta(minutes=minutes)
    job = make_job(job_id, next_run_time=when, **fields)
    store.add_job(job)
    return job


def ids(pages: object) -> list[str]:
    return [row[ID_AT] for page in pages for row in page]  # type: ignore[attr-defined]


def test_the_start_reads_what_is_due_and_what_observers_learn_from(store: Store) -> None:
    add(store, "past", -30)
    add(store, "soon", 5)
    add(store, "edge", 10)
    add(store, "later", 11)
    add(store, "limited-later", 600, history_limit=3)
    add(store, "notified-later", 900, notify={"email": ["ops@example.com"]})
    add(store, "finished", None)
    got = ids(store.job_rows(2, due_by=T0 + timedelta(minutes=10)))
    assert sorted(got) == ["edge", "limited-later", "notified-later", "past", "soon"]
    assert sorted(ids(store.job_rows(2))) == sorted(
        ["past", "soon", "edge", "later", "limited-later", "notified-later", "finished"]
    )


def test_the_window_pages_in_time_then_id_order_through_ties(store: Store) -> None:
    for name in ("d", "b", "c", "a"):  # four jobs at one time: a page boundary falls among them
        add(store, f"tie-{name}", 20)
    add(store, "before", 10)  # at the cursor's time: already loaded, not read again
    add(store, "first", 12)
    add(store, "last", 30)
    add(store, "beyond", 31)
    cursor = (T0 + timedelta(minutes=10), None)
    until = T0 + timedelta(minutes=30)
    seen: list[str] = []
    while True:
        rows = store.due_job_rows(cursor, until, 2)
        seen += [row[ID_AT] for row in rows]
        if len(rows) < 2:
            break
        last = rows[-1]
        when = last[JOB_ROW_FIELDS.index("next_run_time")]
        if isinstance(when, str):  # SQL stores give the stored text
            when = datetime.fromisoformat(when)
        cursor = (when, last[ID_AT])
    assert seen == ["first", "tie-a", "tie-b", "tie-c", "tie-d", "last"]


def test_an_id_in_the_cursor_skips_only_its_time_up_to_it(store: Store) -> None:
    add(store, "m", 20)
    add(store, "n", 20)
    add(store, "a", 21)
    rows = store.due_job_rows((T0 + timedelta(minutes=20), "m"), T0 + timedelta(minutes=40), 10)
    assert [row[ID_AT] for row in rows] == ["n", "a"]
