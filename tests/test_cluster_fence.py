"""A real node stopped (SIGSTOP) past its lease while it holds claimed, unstarted runs:
the other node takes them over, and the stopped one, woken (SIGCONT), starts none of
them (engine/running/fence.py).

Two `cronwell serve` processes on one SQLite file, lease 3 s. Node a has one worker,
held by a 5 s script; five run-now requests through a then wait in its backlog,
each `queued` on node a in the store: claimed, not started. The test stops a, waits
until node b has taken the five over and run them, then wakes a, whose worker ends
the long run and reaches the five. Every run's script appends its job id to a file,
so a run started twice shows twice there even though the store keeps one record per
execution. The fake-clock version of the same is tests/test_engine_fence.py.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from engine.model import Status
from stores.sqlite import SqliteStore
from tests.api_support import ServeProcess, wait_for, write_script

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(120)]

LEASE = 3
RUNS = 5
LONG = 5
NOT_STARTED = "was not started: this node's lease may have lapsed"


@contextmanager
def two_nodes(tmp_path: Path, database: Path, scripts: Path) -> Iterator[list[ServeProcess]]:
    base = ["--store", f"sqlite:///{database}", "--script-root", str(scripts)]
    nodes = [
        ServeProcess(
            [*base, "--node-id", name, "--node-lease", str(LEASE)],
            tmp_path / f"{name}.log",
            env={"CRONWELL_DATA_DIR": str(tmp_path / f"data-{name}"), "CRONWELL_POOL_SIZE": size},
        )
        for name, size in (("a", "1"), ("b", "4"))
    ]
    try:
        for node in nodes:
            node.wait_healthy(60)
        yield nodes
    finally:
        for node in nodes:
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)
                node.terminate()


def run_now(url: str, job_id: str, script: Path, args: list[str]) -> str:
    """Schedule `script` an hour ahead, run it now through `url`; the run's id."""
    body = {
        "job_id": job_id,
        "job_type": "bash",
        "script_path": str(script),
        "args": args,
        "run_date": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    assert requests.post(f"{url}/api/schedule-job", json=body, timeout=30).status_code == 200
    run = requests.post(f"{url}/api/scheduler/jobs/{job_id}/run", timeout=30)
    assert run.status_code == 200, run.text
    execution_id: str = run.json()["execution_id"]
    return execution_id


def stop_between_writes(proc: subprocess.Popen[bytes], database: Path) -> None:
    """SIGSTOP `proc` at a moment it holds no write lock on the SQLite file (stopped
    inside a heartbeat's transaction, it would lock the other node out of the store)."""
    for _ in range(50):
        proc.send_signal(signal.SIGSTOP)
        try:
            with closing(sqlite3.connect(database, timeout=0.2, isolation_level=None)) as db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # caught mid-write: let it finish, try again
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
    raise AssertionError("the node held the store's write lock at every try")


def test_a_node_stopped_past_its_lease_starts_none_of_the_runs_taken_over(
    tmp_path: Path,
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    ran = tmp_path / "ran.txt"
    mark = write_script(scripts, "mark.sh", f'#!/bin/bash\necho "$1" >> {ran}\n')
    hold = write_script(scripts, "hold.sh", f"#!/bin/bash\nsleep {LONG}\n")
    database = tmp_path / "shared.db"
    with two_nodes(tmp_path, database, scripts) as (a, b):
        long_run = run_now(a.url, "long", hold, [])
        store = SqliteStore(database)
        store.open()
        try:
            wait_for(
                lambda: store.get_execution(long_run).status is Status.RUNNING,
                30,
                "the long run to hold a's one worker",
            )
            held = {run_now(a.url, f"r{i}", mark, [f"r{i}"]): f"r{i}" for i in range(RUNS)}
            queued = [store.get_execution(e) for e in held]
            assert {(e.status, e.node) for e in queued} == {(Status.QUEUED, "a")}
            stop_between_writes(a.proc, database)
            stopped = time.monotonic()

            def taken_over() -> bool:
                runs = [store.get_execution(e) for e in held]
                return all(e.status is Status.COMPLETED and e.node == "b" for e in runs)

            wait_for(taken_over, 30, "node b to take over and run a's five claimed runs")
            assert ran.read_text().split() and a.proc.poll() is None
            # a wakes once its long script is over, so its worker reaches the five at once
            time.sleep(max(0.0, LONG + 0.5 - (time.monotonic() - stopped)))
            a.proc.send_signal(signal.SIGCONT)
            wait_for(  # (a run started again would show in the file first)
                lambda: (
                    a.output().count(NOT_STARTED) == RUNS or len(ran.read_text().split()) > RUNS
                ),
                30,
                "node a to refuse the five runs it no longer holds",
            )
            wait_for(
                lambda: requests.get(f"{a.url}/api/health", timeout=5).status_code == 200,
                30,
                "node a to answer again",
            )
            executions = store.list_executions(limit=1000)
        finally:
            store.close()
        nodes = requests.get(f"{b.url}/api/scheduler/nodes", timeout=10).json()["nodes"]
    assert Counter(ran.read_text().split()) == Counter(held.values())  # each ran once
    per_job = Counter(e.job_id for e in executions)
    assert per_job == Counter({"long": 1, **dict.fromkeys(held.values(), 1)})
    for execution in executions:
        assert execution.status not in (Status.QUEUED, Status.RUNNING), execution
        if execution.id in held:
            assert (execution.status, execution.node) == (Status.COMPLETED, "b")
            assert "claimed before node a stopped" in execution.output
    assert {n["node_id"]: n["alive"] for n in nodes} == {"a": True, "b": True}
