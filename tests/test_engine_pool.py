"""The worker pool takes work without a shared lock: every queued item is either run by
exactly one worker or withdrawn exactly once, and the per-job counts end at zero."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from engine.model import Execution, Status
from engine.running.pool import WorkerPool, WorkItem

WAIT = 10.0


def _item(number: int) -> WorkItem:
    execution = Execution(
        id=f"e{number}",
        job_id=f"job-{number % 20}",
        status=Status.QUEUED,
        created_at=datetime.now(UTC),
    )
    return WorkItem(execution)


def test_items_are_run_or_withdrawn_exactly_once_under_contention() -> None:
    ran: list[str] = []
    ran_lock = threading.Lock()

    def work(item: WorkItem) -> None:
        with ran_lock:
            ran.append(item.execution.id)

    pool = WorkerPool(size=8, backlog_limit=100_000, work=work)
    items = [_item(n) for n in range(5000)]
    withdrawn: list[str] = []

    def withdraw_some() -> None:
        for item in items[::7]:
            taken = pool.take_queued(item.execution.id)
            if taken is not None:
                withdrawn.append(taken.execution.id)

    for start in range(0, len(items), 500):
        assert pool.submit(items[start : start + 500]) == 500
    thief = threading.Thread(target=withdraw_some)
    thief.start()
    thief.join(WAIT)
    assert pool.wait_idle(WAIT)
    assert sorted(ran + withdrawn) == sorted(i.execution.id for i in items)
    assert len(set(ran)) == len(ran)
    assert all(pool.instances(f"job-{n}") == 0 for n in range(20))
    assert pool.stop_intake() == []
    pool.join(WAIT)


def test_stop_intake_hands_back_what_no_worker_took() -> None:
    release = threading.Event()
    started = threading.Event()

    def work(item: WorkItem) -> None:
        started.set()
        release.wait(WAIT)

    pool = WorkerPool(size=1, backlog_limit=10, work=work)
    assert pool.submit([_item(n) for n in range(4)]) == 4
    assert started.wait(WAIT)
    assert pool.instances("job-0") == 1 and pool.room() == 7
    returned = pool.stop_intake()
    assert [i.execution.id for i in returned] == ["e1", "e2", "e3"]
    assert pool.submit([_item(9)]) == 0  # refused once stopping
    release.set()
    assert pool.wait_idle(WAIT)
    pool.join(WAIT)
    assert pool.instances("job-0") == 0
