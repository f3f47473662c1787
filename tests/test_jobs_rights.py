"""Job classes act within their owner's rights: a user's ServerHealthCheckJob checks only
that user's servers, and the classes that touch every user's data (backup, cleanup,
maintenance) run only for a job whose owner is an admin (or that has no owner: made
with an admin key or in open mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.config import Settings
from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Job, JobKind, Status
from engine.triggers.date import DateTrigger
from jobs.registry import load_job, resolve_job_class
from runners import Runner
from stores.memory import MemoryStore
from stores.records import Server, User
from tests.jobs_support import START, make_context

ADMIN_ONLY = {
    "jobs.backup.DataBackupJob": {},
    "jobs.cleanup.DataCleanupJob": {"days_old": 1},
    "jobs.maintenance.MaintenanceJob": {"tasks": ["vacuum"]},
}


def _store() -> MemoryStore:
    store = MemoryStore()
    store.add_user(User(id="boss", name="Boss", email="boss@example.com", role="admin"))
    store.add_user(User(id="u1", name="One", email="one@example.com"))
    store.add_user(User(id="u2", name="Two", email="two@example.com"))
    store.add_server(Server(id="s1", user_id="u1", name="one's", hostname="127.0.0.1", port=1))
    store.add_server(Server(id="s2", user_id="u2", name="two's", hostname="127.0.0.1", port=1))
    return store


def _run(
    store: MemoryStore, tmp: Path, target: str, owner: str | None, *args: Any, **kw: Any
) -> Outcome:
    job = Job(
        id="j1",
        name="t",
        kind=JobKind.CLASS,
        target=target,
        trigger=DateTrigger(START),
        args=list(args),
        kwargs=kw,
        owner=owner,
    )
    execution = Execution(id="x1", job_id="j1", status=Status.RUNNING, created_at=START)
    settings = Settings(data_dir=tmp, extra={"health_check_timeout": 1})
    services = make_context(store, settings).services
    return Runner(load_job)(
        RunRequest(job=job, execution=execution, services=services, output_cap=65536)
    )


@pytest.mark.parametrize("target", sorted(ADMIN_ONLY))
def test_admin_only_classes_are_marked(target: str) -> None:
    assert resolve_job_class(target).admin_only
    assert not resolve_job_class("jobs.echo.EchoJob").admin_only


@pytest.mark.parametrize("target", sorted(ADMIN_ONLY))
@pytest.mark.parametrize(
    ("owner", "runs"), [("boss", True), (None, True), ("u1", False), ("deleted", False)]
)
def test_admin_only_classes_run_only_for_an_admin_owner(
    tmp_path: Path, target: str, owner: str | None, runs: bool
) -> None:
    outcome = _run(_store(), tmp_path, target, owner, **ADMIN_ONLY[target])
    if runs:
        assert outcome.status == Status.COMPLETED, outcome.error
    else:
        assert outcome.status == Status.FAILED
        assert (
            outcome.error
            == f"{target} works on every user's data: its job's owner must be an admin"
        )


def test_a_users_health_check_sees_only_their_servers(tmp_path: Path) -> None:
    store = _store()
    target = "jobs.server.ServerHealthCheckJob"
    own = _run(store, tmp_path, target, "u1", "s1")
    assert own.status == Status.COMPLETED, own.error
    assert store.get_server("s1").last_check_at is not None
    other = _run(store, tmp_path, target, "u1", "s2")
    assert (other.status, other.error) == (Status.FAILED, "Server not found: s2")
    assert store.get_server("s2").last_check_at is None  # untouched
    missing = _run(store, tmp_path, target, "u1", "nope")
    assert missing.error == "Server not found: nope"  # the same answer as another user's
    for admin in ("boss", None):
        assert _run(store, tmp_path, target, admin, "s2").status == Status.COMPLETED
