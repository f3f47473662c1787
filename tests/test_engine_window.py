"""The load window (engine/scheduling/window.py) on a fake clock and real SQLite files:
the engine holds only what is due within `load_ahead`, yet every job fires at its time,
once; jobs fired, added or moved past the window leave memory and come back; the
observers still see every job they learn from; a failed read is tried again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.errors import StoreUnavailable
from engine.model import Job, Status
from engine.scheduling.timetable import Timetable
from engine.scheduling.window import RETRY_AFTER, LoadWindow
from stores.sqlite import SqliteStore
from tests.engine_support import T0, Harness, date_at, every, make_job


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    made = SqliteStore(tmp_path / "jobs.db")
    made.open()
    yield made
    made.close()


def at(seconds: float) -> Any:
    return T0 + timedelta(seconds=seconds)


def stored(store: SqliteStore, job: Job) -> Job:
    job.next_run_time = job.trigger.next_fire_time(T0 - timedelta(seconds=1))
    store.add_job(job)
    return job


def walk(h: Harness, until: float, step: float, sizes: list[int] | None = None) -> None:
    """Step the engine every `step` seconds from 0 to `until`, as its thread would wake."""
    t = 0.0
    while t <= until:
        h.at(t)
        h.settle()  # runs start on the fake clock's time of the step that fired them
        if sizes is not None:
            sizes.append(h.scheduler.scheduled_jobs)
        t += step
    h.settle()


def fired_at(h: Harness, job_id: str) -> list[tuple[float, float]]:
    """(scheduled_for, started_at) of each run of a job, in seconds after T0."""
    return [
        ((e.scheduled_for - T0).total_seconds(), (e.started_at - T0).total_seconds())
        for e in h.executions(job_id)
        if e.status == Status.COMPLETED
    ]


def test_only_what_is_due_soon_is_held_and_the_rest_fires_on_time(store: SqliteStore) -> None:
    stored(store, make_job("near", date_at(at(30))))
    stored(store, make_job("far", date_at(at(3600))))
    stored(store, make_job("hourly", every(3600, start=at(1800))))
    with Harness(store=store, load_ahead=300) as h:
        recovery = h.scheduler.start(loop_thread=False)
        assert recovery.jobs == 1 and h.scheduler.scheduled_jobs == 1  # "near" alone
        sizes: list[int] = []
        walk(h, 5500, 30, sizes)
        assert fired_at(h, "near") == [(30, 30)]
        assert fired_at(h, "far") == [(3600, 3600)]
        assert fired_at(h, "hourly") == [(1800, 1800), (5400, 5400)]
        assert max(sizes) <= 2  # never more than the window's jobs in memory


def test_a_job_fired_past_the_window_leaves_memory_and_comes_back(store: SqliteStore) -> None:
    stored(store, make_job("ten-min", every(600, start=at(0))))
    with Harness(store=store, load_ahead=120) as h:
        h.scheduler.start(loop_thread=False)
        sizes: list[int] = []
        walk(h, 1900, 20, sizes)
        assert fired_at(h, "ten-min") == [(t, t) for t in (0, 600, 1200, 1800)]
        assert 0 in sizes and 1 in sizes  # out of memory between fires, back before each


def test_jobs_added_or_moved_past_the_window_wait_in_the_store(store: SqliteStore) -> None:
    with Harness(store=store, load_ahead=60) as h:
        h.scheduler.start(loop_thread=False)
        h.add(make_job("later", date_at(at(400))))
        h.add(make_job("soon", date_at(at(20))))
        assert h.scheduler.scheduled_jobs == 1
        h.do(h.scheduler.modify_job("soon", trigger=date_at(at(500))))
        assert h.scheduler.scheduled_jobs == 0
        walk(h, 600, 10)
        assert fired_at(h, "later") == [(400, 400)]
        assert fired_at(h, "soon") == [(500, 500)]


def test_a_job_paused_inside_the_window_stays_unfired_until_resumed(store: SqliteStore) -> None:
    stored(store, make_job("a", every(100, start=at(100))))
    with Harness(store=store, load_ahead=300) as h:
        h.scheduler.start(loop_thread=False)
        h.do(h.scheduler.pause_job("a"))
        walk(h, 250, 10)
        assert fired_at(h, "a") == []
        h.do(h.scheduler.resume_job("a"))
        for t in range(260, 420, 10):
            h.at(t)
            h.settle()
        assert fired_at(h, "a") == [(300, 300), (400, 400)]


def test_the_start_shows_observers_the_jobs_past_the_window(store: SqliteStore) -> None:
    stored(store, make_job("kept", date_at(at(90_000)), history_limit=3))
    stored(store, make_job("told", date_at(at(90_000)), notify={"on": ["failed"]}))
    stored(store, make_job("plain", date_at(at(90_000))))
    seen: list[dict[str, Any]] = []
    with Harness(store=store, load_ahead=60) as h:
        h.scheduler.start(
            loop_thread=False,
            observers=(seen.append,),
            observed_fields=("history_limit", "notify"),
        )
        assert h.scheduler.scheduled_jobs == 0
    assert sorted(record["id"] for record in seen) == ["kept", "told"]


class Flaky(SqliteStore):
    """A real SQLite store whose window reads fail while `down` is set."""

    down: Exception | None = None
    reads = 0

    def due_job_rows(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        if self.down is not None:
            raise self.down
        return super().due_job_rows(*args, **kwargs)


@pytest.mark.parametrize(
    "error", [StoreUnavailable("the store is away"), RuntimeError("a bug in a read")]
)
def test_a_failed_read_is_tried_again_and_the_job_still_fires(
    tmp_path: Path, error: Exception
) -> None:
    """A store failure or a bug: either way the step goes on (a fire in memory is not
    held up) and the read is tried again a second later."""
    store = Flaky(tmp_path / "jobs.db")
    store.open()
    stored(store, make_job("a", date_at(at(200))))
    stored(store, make_job("held", date_at(at(61))))
    with Harness(store=store, load_ahead=100) as h:
        h.scheduler.start(loop_thread=False)
        store.down = error
        h.at(60)  # behind: reads and fails
        h.at(61)
        h.settle()
        assert fired_at(h, "held") == [(61, 61)]
        assert store.reads == 2  # at 60 and again at 61, RETRY_AFTER later
        h.at(61 + RETRY_AFTER / 2)  # waits out the retry pause
        assert store.reads == 2
        store.down = None
        walk(h, 260, 10)
        assert fired_at(h, "a") == [(200, 200)]
    store.close()


def test_a_crowd_at_one_time_comes_in_over_pages_none_twice(store: SqliteStore) -> None:
    for number in range(7):
        stored(store, make_job(f"j{number}", date_at(at(50))))
    stored(store, make_job("after", date_at(at(55))))
    table = Timetable()
    window = LoadWindow(store, table, ahead=20, page=2)
    window.open(at(0))
    assert len(table) == 0
    pages = 0
    while window.behind(at(40).timestamp()):
        window.advance(at(40))
        pages += 1
    assert pages == 5 and len(table) == 8
    assert window.cursor == (at(60), None)
    with pytest.raises(ValueError):
        LoadWindow(store, table, ahead=0)


def test_the_loop_thread_wakes_to_slide_the_window_with_nothing_on_its_heap(
    store: SqliteStore,
) -> None:
    """The real clock and the loop thread: a job added past the window is read and
    fired although the heap was empty, so the thread had no fire to wake for."""
    from datetime import UTC, datetime

    from engine.scheduler import Scheduler
    from tests.engine_support import Recorder

    runner = Recorder()
    scheduler = Scheduler(store, runner, load_ahead=0.2)
    scheduler.start()
    try:
        due = datetime.now(UTC) + timedelta(seconds=1.0)
        scheduler.add_job(make_job("later", date_at(due))).result(timeout=5)
        assert scheduler.scheduled_jobs == 0  # past the window: in the store alone
        assert runner.started.wait(5)
        assert runner.job_ids == ["later"]
        assert scheduler.wait_idle(5)
        (run,) = [e for e in store.list_executions(job_id="later") if e.started_at is not None]
        assert run.started_at is not None and run.started_at >= due
    finally:
        scheduler.shutdown(timeout=5)


def test_a_job_whose_row_cannot_be_read_is_left_out_and_the_rest_fire(
    store: SqliteStore,
) -> None:
    """A document that no longer decodes (its slot columns empty) and a stored trigger
    that no longer parses, both in the page the window reads: each is logged and left
    out, and the jobs before and after them in that page, and past it, fire."""
    for job_id, seconds in (("a-ok", 300), ("bad-doc", 320), ("bad-trigger", 340)):
        stored(store, make_job(job_id, date_at(at(seconds))))
    stored(store, make_job("b-ok", date_at(at(400))))
    stored(store, make_job("z-later", date_at(at(1000))))
    with store._transaction() as cursor:
        cursor.execute("UPDATE cw_jobs SET trigger_spec = NULL, doc = '{' WHERE id = 'bad-doc'")
        cursor.execute(
            "UPDATE cw_jobs SET trigger_spec = '{\"kind\": \"nope\"}' WHERE id = 'bad-trigger'"
        )
    with Harness(store=store, load_ahead=200) as h:
        h.scheduler.start(loop_thread=False)
        walk(h, 1100, 10)
        assert fired_at(h, "a-ok") == [(300, 300)]
        assert fired_at(h, "b-ok") == [(400, 400)]
        assert fired_at(h, "z-later") == [(1000, 1000)]
        assert fired_at(h, "bad-doc") == fired_at(h, "bad-trigger") == []


@pytest.mark.parametrize("load_ahead", [None, 200])
def test_start_up_leaves_out_a_job_whose_trigger_or_time_no_longer_parses(
    store: SqliteStore, load_ahead: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    """The rows start-up reads (every job, or those due within the window): a stored
    trigger and a stored time that no longer parse are logged and left out, and the
    service starts and fires the rest; before, start-up failed on the first of them."""
    for job_id, seconds in (("a-ok", 30), ("bad-trigger", 40), ("bad-time", 45)):
        stored(store, make_job(job_id, date_at(at(seconds))))
    stored(store, make_job("b-ok", date_at(at(50))))
    with store._transaction() as cursor:
        cursor.execute(
            "UPDATE cw_jobs SET trigger_spec = '{\"kind\": \"nope\"}' WHERE id = 'bad-trigger'"
        )
        cursor.execute("UPDATE cw_jobs SET next_run_time = 'soon' WHERE id = 'bad-time'")
    with Harness(store=store, load_ahead=load_ahead) as h:
        h.scheduler.start(loop_thread=False)
        walk(h, 100, 10)
        assert fired_at(h, "a-ok") == [(30, 30)]
        assert fired_at(h, "b-ok") == [(50, 50)]
        assert fired_at(h, "bad-trigger") == fired_at(h, "bad-time") == []
    left_out = " ".join(
        r.getMessage() for r in caplog.records if "cannot be scheduled" in r.getMessage()
    )
    assert "bad-trigger" in left_out
    # a window reads rows by their time's index, where 'soon' sorts after every date
    assert ("bad-time" in left_out) is (load_ahead is None)


class LosesRows(SqliteStore):
    """A real SQLite store on which some jobs' documents are gone by the time their
    empty slot columns send the read to them (deleted between the two reads)."""

    gone: frozenset[str] = frozenset()

    def _row_from_document(self, job_id: str) -> Any:
        return None if job_id in self.gone else super()._row_from_document(job_id)


def test_a_row_left_out_of_a_page_does_not_end_the_window_early(tmp_path: Path) -> None:
    store = LosesRows(tmp_path / "jobs.db")
    store.open()
    for number in range(6):
        stored(store, make_job(f"j{number}", date_at(at(50 + number))))
    with store._transaction() as cursor:
        cursor.execute("UPDATE cw_jobs SET trigger_spec = NULL WHERE id IN ('j1', 'j2')")
    store.gone = frozenset({"j1"})
    table = Timetable()
    window = LoadWindow(store, table, ahead=100, page=2)
    window.open(at(-100))
    while window.behind(at(0).timestamp()):
        window.advance(at(0))
    assert sorted(table.jobs) == ["j0", "j2", "j3", "j4", "j5"]
    store.close()


def test_the_window_reads_are_range_scans_of_one_index(store: SqliteStore) -> None:
    """No sort of the rows at the cursor's time (a million jobs on one daily time would
    make every page sort them all): both reads walk (next_run_time, id) in order."""
    assert store._db is not None
    for name in ("window_rows_tied", "window_rows_from"):
        plan = " | ".join(
            row[-1]
            for row in store._db.execute(
                f"EXPLAIN QUERY PLAN {store._sql[name]}",
                {"since": "x", "until": "y", "after": "z", "limit": 1, "offset": 0},
            ).fetchall()
        )
        assert "cw_jobs_next_run_id" in plan and "TEMP B-TREE" not in plan, (name, plan)


def test_the_index_the_window_replaced_is_dropped_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    made = SqliteStore(path)
    made.open()
    assert made._db is not None
    made._db.execute("CREATE INDEX cw_jobs_next_run ON cw_jobs (next_run_time)")
    made.close()
    again = SqliteStore(path)
    again.open()
    assert again._db is not None
    names = {row[0] for row in again._db.execute("SELECT name FROM sqlite_master")}
    assert "cw_jobs_next_run" not in names and "cw_jobs_next_run_id" in names
    again.close()


def test_a_full_reload_looks_only_at_what_the_window_holds(store: SqliteStore) -> None:
    """A cluster node passing a gap in the change feed reloads every job it may hold:
    with a window, those due by its edge, not the whole store."""
    from engine.scheduling.commands import SyncJobs

    stored(store, make_job("near", date_at(at(30))))
    stored(store, make_job("far", date_at(at(90_000))))
    with Harness(store=store, load_ahead=300) as h:
        h.scheduler.start(loop_thread=False)
        assert h.scheduler.scheduled_jobs == 1
        h.store.add_job(make_job("written-elsewhere", date_at(at(60)), next_run_time=at(60)))
        asked: list[int] = []
        get_jobs = store.get_jobs
        store.get_jobs = lambda ids: asked.append(len(ids)) or get_jobs(ids)  # type: ignore[method-assign]
        assert h.scheduler._commands.post_internal(SyncJobs(None))
        h.at(0)
        assert asked == [2]  # near and written-elsewhere; far stays in the store
        assert h.scheduler.scheduled_jobs == 2
