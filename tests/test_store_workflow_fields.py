"""The workflow fields survive every backend (memory, SQLite, the Mongo stand-in, and
real MongoDB / Oracle when configured): a job's overlap, chains and notify; an
execution's overlap_decision, triggered_by, chained and notifications, through add,
update and the batched finish the recorder uses."""

from __future__ import annotations

from engine.model import Status
from stores.base import Store
from tests.test_store_contract import make_execution, make_job, store  # noqa: F401

NOTIFY = {"on": ["failed", "missed"], "webhook": "https://example.org/h", "secret": "k"}


def test_job_workflow_fields_round_trip(store: Store) -> None:  # noqa: F811
    target = make_job()
    store.add_job(target)
    job = make_job(overlap="queue", on_success=[target.id], on_failure=[target.id], notify=NOTIFY)
    store.add_job(job)
    got = store.get_job(job.id)
    assert (got.overlap, list(got.on_success), list(got.on_failure), got.notify) == (
        "queue",
        [target.id],
        [target.id],
        NOTIFY,
    )
    got.overlap, got.notify, got.on_failure = "replace", None, ()
    store.update_job(got)
    again = store.get_job(job.id)
    assert (again.overlap, again.notify, list(again.on_failure)) == ("replace", None, [])
    assert store.get_job(target.id).overlap == "skip"  # the default


def test_execution_workflow_fields_round_trip(store: Store) -> None:  # noqa: F811
    job = make_job()
    store.add_job(job)
    execution = make_execution(
        job, overlap_decision="queued: waits", triggered_by="a" * 24, reason="chain"
    )
    store.add_execution(execution)
    execution.status = Status.FAILED
    execution.chained = [{"job_id": "b" * 24, "execution_id": "c" * 24}]
    store.record_progress([], [execution])
    execution.notifications = [
        {"at": "2026-01-01T00:00:00+00:00", "target": "webhook x", "attempt": 1, "outcome": "ok"}
    ]
    store.update_execution(execution)
    got = store.get_execution(execution.id)
    assert got.overlap_decision == "queued: waits" and got.triggered_by == "a" * 24
    assert got.chained == execution.chained and got.notifications == execution.notifications
    assert got.reason == "chain" and got.status == Status.FAILED
