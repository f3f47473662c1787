"""The dashboard's pure parts: triggers in words, chart buckets and SVG, output
splitting, next fires, and the session table (expiry, bound, CSRF comparison)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.ui import charts
from api.ui.reads import LatestRuns, split_output
from api.ui.session import Session, Sessions, csrf_matches
from api.ui.words import duration_in_words
from engine.model import Execution, Job, JobKind, Status
from engine.triggers import CronTrigger
from runners.process import combine_output
from stores.memory import MemoryStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_durations_in_words() -> None:
    assert duration_in_words(timedelta(days=1, hours=2)) == "1 day 2 hours"
    assert duration_in_words(timedelta(seconds=90.5)) == "1 minute 30.5 seconds"
    assert duration_in_words(timedelta(0)) == "0 seconds"


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [("out\n", "err\n"), ("out", "err"), ("", "only err\n"), ("just out\n", "")],
)
def test_split_output_undoes_the_runner_combination(stdout: str, stderr: str) -> None:
    got_out, got_err = split_output(combine_output(stdout, stderr))
    if stderr:
        assert got_err == stderr
        assert got_out.rstrip("\n") == stdout.rstrip("\n")
    else:
        assert (got_out, got_err) == (stdout, None)


def execution(
    minutes_ago: float, status: Status, late: float = 0.0, took: float = 1.0
) -> Execution:
    created = NOW - timedelta(minutes=minutes_ago)
    return Execution(
        id=f"{int(minutes_ago * 1000):024x}",
        job_id="j",
        status=status,
        created_at=created,
        scheduled_for=created,
        started_at=created + timedelta(seconds=late),
        completed_at=created + timedelta(seconds=late + took),
    )


def test_buckets_count_by_outcome_back_from_now() -> None:
    runs = [
        execution(5, Status.COMPLETED),
        execution(10, Status.FAILED),
        execution(15, Status.TIMEOUT),
        execution(90, Status.MISSED),
        execution(60 * 30, Status.COMPLETED),  # older than a day: left out
    ]
    hours = charts.buckets(runs, NOW, timedelta(hours=1), 24, "h")
    assert len(hours) == 24
    assert hours[-1].counts == {"completed": 1, "failed": 2, "not run": 0, "active": 0}
    assert hours[-2].counts["not run"] == 1
    assert sum(b.total for b in hours) == 4
    svg = charts.outcome_chart("Runs", hours)
    assert svg.count("<rect") == 3
    assert "<title>last h: 2 failed</title>" in svg
    assert 'aria-label="Runs: 1 completed, 2 failed, 1 not run, 0 active"' in svg


def test_time_chart_plots_lateness_and_duration() -> None:
    runs = [
        execution(30, Status.COMPLETED, late=0.5, took=2.0),
        execution(20, Status.COMPLETED, late=1.5),
    ]
    late = charts.series(runs, "lateness")
    assert [v for _, v in late] == [0.5, 1.5]
    took = charts.series(runs, "duration")
    assert [v for _, v in took] == [2.0, 1.0]
    svg = charts.time_chart("Lateness", late, NOW, timedelta(days=7))
    assert svg.count("<circle") == 2
    assert "2 runs, median 1.000 s, max 1.500 s" in svg
    empty = charts.time_chart("Lateness", [], NOW, timedelta(days=7))
    assert "no runs in this period" in empty and "<circle" not in empty


def test_chart_text_is_escaped() -> None:
    svg = charts.outcome_chart("<b>&", charts.buckets([], NOW, timedelta(days=1), 7, "d"))
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_when_idle_and_stay_bounded() -> None:
    clock = FakeClock()
    table = Sessions(limit=3, idle=100, clock=clock)
    first = table.start("k")
    assert table.get(first.id) is first
    clock.now = 99
    assert table.get(first.id) is first  # use keeps it alive
    clock.now = 198
    assert table.get(first.id) is first
    clock.now = 299
    assert table.get(first.id) is None
    assert len(table) == 0
    made = [table.start(None) for _ in range(4)]
    assert len(table) == 3
    assert table.get(made[0].id) is None  # the least recently used went first
    table.end(made[1].id)
    assert table.get(made[1].id) is None
    assert table.get(None) is None and table.get("") is None


def test_csrf_comparison() -> None:
    session = Session("id", "token", None, 0.0)
    assert csrf_matches(session, "token")
    assert not csrf_matches(session, "tokenx")
    assert not csrf_matches(session, "")
    assert not csrf_matches(session, None)


class CountingStore(MemoryStore):
    """A memory store that counts the per-job execution reads the jobs list makes."""

    def __init__(self) -> None:
        super().__init__()
        self.point_reads = 0

    def list_executions(self, **filters: Any) -> list[Execution]:  # type: ignore[override]
        if filters.get("job_id") is not None:
            self.point_reads += 1
        return super().list_executions(**filters)


def test_latest_runs_remember_finished_runs_until_the_job_runs_again() -> None:
    store = CountingStore()
    store.open()
    job = Job(
        id="j1",
        name="j",
        kind=JobKind.CLASS,
        target="jobs.echo.EchoJob",
        trigger=CronTrigger(minute="0"),
        created_at=NOW,
        updated_at=NOW,
    )
    store.add_job(job)
    latest = LatestRuns()
    assert latest.read(store, store.list_jobs()) == {}
    assert store.point_reads == 0  # a job that never ran is not looked up
    first = execution(30, Status.QUEUED)
    first.job_id = "j1"
    store.add_execution(first)
    # active: found by status, every time, without a per-job read
    assert latest.read(store, store.list_jobs())["j1"]["status"] == "queued"
    assert store.point_reads == 0
    first.status = Status.COMPLETED
    store.finish_execution(first)  # bumps the job's run counters
    assert latest.read(store, store.list_jobs())["j1"]["_id"] == first.id
    assert store.point_reads == 1
    assert latest.read(store, store.list_jobs())["j1"]["status"] == "completed"
    assert store.point_reads == 1  # remembered
    second = execution(10, Status.RUNNING)
    second.job_id = "j1"
    store.add_execution(second)
    assert latest.read(store, store.list_jobs())["j1"]["_id"] == second.id
    second.status = Status.FAILED
    store.finish_execution(second)
    shown = latest.read(store, store.list_jobs())["j1"]
    assert (shown["_id"], shown["status"]) == (second.id, "failed")
    assert store.point_reads == 2
