"""The store-facing jobs (backup + restore, cleanup, report, maintenance) on real stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from api.config import Settings
from engine.clock import FakeClock
from engine.errors import InvalidInput
from engine.model import Execution, Job, JobKind, Status
from engine.triggers.date import DateTrigger
from jobs.backup import DataBackupJob, restore_backup
from jobs.base import JobContext, JobError
from jobs.cleanup import DataCleanupJob
from jobs.maintenance import MaintenanceJob
from jobs.report import ReportGenerationJob
from stores.base import Store
from stores.records import Server, User
from tests.jobs_support import (
    BACKENDS,
    START,
    finished_execution,
    make_context,
    make_store,
    run_job,
)

DAY = timedelta(days=1)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = make_store(request.param, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def seed(store: Store) -> None:
    """Two users, a server with a password, a job and executions of several ages."""
    store.add_user(User(id="u1", name="Ann", email="ann@example.com", created_at=START - DAY))
    store.add_user(User(id="u2", name="Bob", email="bob@example.com", created_at=START - DAY))
    store.add_server(
        Server(
            id="s1",
            user_id="u1",
            name="db",
            hostname="db.local",
            port=5432,
            password_encrypted="gAAAA-secret-token",
            created_at=START - DAY,
            last_check={"tcp": {"ok": True}},
            last_check_at=START - DAY,
        )
    )
    store.add_job(
        Job(
            id="j1",
            name="nightly",
            kind=JobKind.CLASS,
            target="jobs.echo.EchoJob",
            trigger=DateTrigger(START + DAY),
            args=["a"],
            kwargs={"k": 1},
            owner="u1",
            next_run_time=START + DAY,
            created_at=START - DAY,
            updated_at=START - DAY,
        )
    )
    ages = {"old-done": 40, "old-failed": 35, "recent": 2, "today": 0.5}
    for execution_id, days in ages.items():
        status = Status.FAILED if "failed" in execution_id else Status.COMPLETED
        store.add_execution(finished_execution(execution_id, "j1", status, START - days * DAY))
    running = Execution(
        id="old-running",
        job_id="j1",
        status=Status.RUNNING,
        created_at=START - 50 * DAY,
        started_at=START - 50 * DAY,
    )
    store.add_execution(running)


# -- DataBackupJob + restore_backup -----------------------------------------------------
def test_backup_writes_every_collection_without_passwords(
    store: Store, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(store)
    result = run_job(DataBackupJob, make_context(store, settings))
    path = Path(result["file"])
    assert path.parent == settings.backups and path.name == "cronwell-backup-20260301T120000Z.json"
    assert result["counts"] == {"users": 2, "servers": 1, "jobs": 1, "executions": 5}
    assert result["bytes"] == path.stat().st_size
    text = path.read_text()
    assert "secret-token" not in text and "password_encrypted" not in text
    backup = json.loads(text)
    assert backup["format"] == "cronwell-backup" and backup["backend"] == store.backend
    assert backup["created_at"] == START.isoformat()
    assert {u["email"] for u in backup["collections"]["users"]} == {
        "ann@example.com",
        "bob@example.com",
    }
    [job] = backup["collections"]["jobs"]
    assert job["trigger"]["kind"] == "date" and job["args"] == ["a"] and job["kwargs"] == {"k": 1}
    assert list(settings.backups.iterdir()) == [path]  # no partial file left
    out = capsys.readouterr().out
    assert f"Backup written to {path}" in out and "executions: 5 records" in out


def test_restore_puts_back_what_is_missing(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    seed(store)
    path = Path(run_job(DataBackupJob, make_context(store, settings))["file"])
    fresh = make_store("memory", tmp_path)
    fresh.add_user(User(id="u2", name="Bob", email="bob@example.com"))  # already there: skipped
    counts = restore_backup(fresh, path)
    assert counts == {
        "users": {"restored": 1, "skipped": 1},
        "servers": {"restored": 1, "skipped": 0},
        "jobs": {"restored": 1, "skipped": 0},
        "executions": {"restored": 5, "skipped": 0},
    }
    job = fresh.get_job("j1")
    assert job.trigger == DateTrigger(START + DAY) and job.next_run_time == START + DAY
    assert job.kwargs == {"k": 1} and job.owner == "u1" and job.created_at == START - DAY
    server = fresh.get_server("s1")
    assert server.password_encrypted == "" and server.last_check_at == START - DAY
    assert fresh.get_execution("old-failed") == store.get_execution("old-failed")
    assert fresh.get_user("u1") == store.get_user("u1")
    assert restore_backup(fresh, path)["executions"] == {"restored": 0, "skipped": 5}  # idempotent


def test_backup_of_chosen_collections_and_refusals(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    seed(store)
    context = make_context(store, settings)
    result = run_job(DataBackupJob, context, collections=["servers", "users"])
    assert result["counts"] == {"servers": 1, "users": 2}
    assert list(json.loads(Path(result["file"]).read_text())["collections"]) == ["servers", "users"]
    second = run_job(DataBackupJob, context, collections="users")  # same second: a new name
    assert Path(second["file"]).name == "cronwell-backup-20260301T120000Z-1.json"
    with pytest.raises(
        JobError,
        match="each of collections must be one of users, servers, jobs, executions, not 'logs'",
    ):
        run_job(DataBackupJob, context, collections=["users", "logs"])
    with pytest.raises(JobError, match="collections must be a non-empty list"):
        run_job(DataBackupJob, context, collections=[])
    not_backup = tmp_path / "other.json"
    not_backup.write_text('{"hello": 1}')
    with pytest.raises(InvalidInput, match="not a cronwell backup"):
        restore_backup(store, not_backup)


def test_cancelled_backup_leaves_no_file(store: Store, settings: Settings) -> None:
    seed(store)
    context = make_context(store, settings)
    context.cancel.set()
    with pytest.raises(JobError, match="Backup cancelled; no file was kept"):
        run_job(DataBackupJob, context)
    assert list(settings.backups.iterdir()) == []


# -- DataCleanupJob ---------------------------------------------------------------------
def test_cleanup_deletes_finished_executions_older_than_days(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(store)
    result = run_job(DataCleanupJob, make_context(store))
    assert result == {
        "days_old": 30,
        "cutoff": (START - 30 * DAY).isoformat(),
        "deleted": {"executions": 2},
    }
    left = {e.id for e in store.list_executions()}
    assert left == {"recent", "today", "old-running"}  # a running one is never deleted
    assert "executions: 2 deleted" in capsys.readouterr().out
    assert run_job(DataCleanupJob, make_context(store), days_old="1")["deleted"] == {
        "executions": 1
    }
    assert run_job(DataCleanupJob, make_context(store), days_old=0, collections=["executions"])[
        "deleted"
    ] == {"executions": 1}
    assert {e.id for e in store.list_executions()} == {"old-running"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days_old": -1}, "days_old must be at least 0, not -1"),
        ({"days_old": "soon"}, "days_old must be a whole number, not 'soon'"),
        ({"days_old": True}, "days_old must be a whole number"),
        ({"collections": ["executions", "users"]}, "Cannot clean users: users are never expired"),
        (
            {"collections": ["jobs"]},
            r"jobs are removed through the engine \(DELETE /api/scheduler/jobs/<id>\)",
        ),
        ({"collections": ["sessions"]}, "each of collections must be one of"),
        ({"older_than": 3}, "unknown pub_kwargs older_than; it takes: collections, days_old"),
    ],
)
def test_cleanup_refuses_bad_arguments_before_deleting(
    store: Store, kwargs: dict[str, object], message: str
) -> None:
    seed(store)
    with pytest.raises(JobError, match=message):
        run_job(DataCleanupJob, make_context(store), **kwargs)
    assert store.count_executions() == 5


# -- ReportGenerationJob ----------------------------------------------------------------
def report_context(store: Store, settings: Settings) -> JobContext:
    """Executions of two jobs spread over the last 40 days, all ending before START."""
    rows = [
        ("a1", "ja", Status.COMPLETED, 0.2, 2.0),
        ("a2", "ja", Status.COMPLETED, 0.5, 4.0),
        ("a3", "ja", Status.FAILED, 0.9, 1.0),
        ("a4", "ja", Status.COMPLETED, 3, 10.0),
        ("b1", "jb", Status.TIMEOUT, 0.1, 30.0),
        ("b2", "jb", Status.MISSED, 0.3, 0.0),
        ("b3", "jb", Status.COMPLETED, 6, 5.0),
        ("b4", "jb", Status.FAILED, 20, 1.0),
        ("z1", "jb", Status.COMPLETED, 40, 1.0),
    ]
    for execution_id, job_id, status, days, seconds in rows:
        error = "Traceback...\nValueError: boom" if status == Status.FAILED else ""
        execution = finished_execution(
            execution_id, job_id, status, START - days * DAY, seconds, error
        )
        if status == Status.MISSED:
            execution.started_at = execution.completed_at = None
        store.add_execution(execution)
    return make_context(store, settings, FakeClock(START))


def test_daily_report_counts_per_job(
    store: Store, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_job(ReportGenerationJob, report_context(store, settings), report_type="daily")
    assert result["period"] == {"start": (START - DAY).isoformat(), "end": START.isoformat()}
    totals = result["totals"]
    assert totals["total"] == 5 and totals["failures"] == 2
    assert totals["by_status"] == {"completed": 2, "failed": 1, "missed": 1, "timeout": 1}
    assert totals["success_rate"] == 50.0  # 2 completed of 4 that ran to an end
    report = json.loads(Path(result["files"]["json"]).read_text())
    ja, jb = report["jobs"]["ja"], report["jobs"]["jb"]
    assert ja["total"] == 3 and ja["success_rate"] == pytest.approx(66.67)
    assert (
        ja["mean_duration_seconds"] == pytest.approx(7 / 3, abs=1e-3)
        and ja["max_duration_seconds"] == 4.0
    )
    assert ja["recent_failures"] == [
        {
            "execution_id": "a3",
            "job_id": "ja",
            "status": "failed",
            "created_at": (START - 0.9 * DAY).isoformat(),
            "error": "ValueError: boom",
        }
    ]
    assert jb["by_status"] == {"missed": 1, "timeout": 1} and jb["success_rate"] == 0.0
    assert jb["mean_duration_seconds"] == 30.0  # the missed fire never ran
    markdown = Path(result["files"]["markdown"]).read_text()
    assert markdown.startswith("# cronwell daily report\n")
    assert "| ja | name of ja | 3 | 2 | 1 | 66.67% | 2.333 | 4.0 |" in markdown
    assert "ValueError: boom" in markdown
    assert Path(result["files"]["json"]).name == "report-daily-20260301T120000Z.json"
    out = capsys.readouterr().out
    assert "5 executions of 2 jobs, 2 failures, success rate 50.0%" in out


def test_weekly_and_monthly_periods(store: Store, settings: Settings) -> None:
    context = report_context(store, settings)
    weekly = run_job(ReportGenerationJob, context, report_type="weekly")
    assert weekly["totals"]["total"] == 7
    monthly = run_job(ReportGenerationJob, context, report_type="monthly")
    assert monthly["period"]["start"] == "2026-02-01T12:00:00+00:00"  # one calendar month
    assert monthly["totals"]["total"] == 8  # z1, 40 days old, is outside
    assert sorted(p.suffix for p in settings.reports.iterdir()) == [".json", ".json", ".md", ".md"]


def test_report_pages_through_a_long_history(store: Store, settings: Settings) -> None:
    for n in range(1203):
        store.add_execution(
            finished_execution(
                f"e{n:05d}", f"job{n % 3}", Status.COMPLETED, START - n * timedelta(seconds=60)
            )
        )
    result = run_job(ReportGenerationJob, make_context(store, settings), report_type="daily")
    assert result["totals"]["total"] == 1203 and result["totals"]["success_rate"] == 100.0


def test_report_type_must_be_known(store: Store, settings: Settings) -> None:
    with pytest.raises(
        JobError, match="report_type must be one of daily, weekly, monthly, not 'yearly'"
    ):
        run_job(ReportGenerationJob, make_context(store, settings), report_type="yearly")


def test_empty_report_says_so(store: Store, settings: Settings) -> None:
    result = run_job(ReportGenerationJob, make_context(store, settings))
    assert result["report_type"] == "daily"
    assert result["totals"]["total"] == 0 and result["totals"]["success_rate"] is None
    assert "success rate: n/a" in Path(result["files"]["markdown"]).read_text()


# -- MaintenanceJob ---------------------------------------------------------------------
def test_maintenance_runs_each_task_on_the_store(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(store)
    result = run_job(MaintenanceJob, make_context(store))
    assert result["backend"] == store.backend
    assert result["tasks"] == ["rebuild_indexes", "optimize_queries", "clear_cache"]
    assert [r["task"] for r in result["results"]] == result["tasks"]
    vacuum = run_job(MaintenanceJob, make_context(store), tasks=["vacuum"])
    assert vacuum["results"][0]["task"] == "vacuum"
    assert store.count_executions() == 5  # housekeeping never loses data
    out = capsys.readouterr().out
    assert (
        f"Maintenance on the {store.backend} store: rebuild_indexes, optimize_queries, clear_cache"
        in out
    )


def test_maintenance_refuses_unknown_tasks_before_running_any(store: Store) -> None:
    with pytest.raises(
        JobError,
        match="each of tasks must be one of rebuild_indexes, optimize_queries, clear_cache, vacuum, not 'defrag'",
    ):
        run_job(MaintenanceJob, make_context(store), tasks=["clear_cache", "defrag"])
