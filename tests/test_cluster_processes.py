"""Several `cronwell serve` processes on one store: each occurrence fires exactly once.

Three real processes share one SQLite file, each with its own node id. Jobs are created
round-robin through the three APIs: 600 one-off bash scripts due over 10 s and 10 job
classes repeating every second. The store's executions are the ground truth: every
occurrence must have exactly one execution, none left queued or running. The second
test kills one node with SIGKILL halfway; the survivors must take over what it had
claimed (or record it missed, by policy) and abandon what it was running within its
lease and two seconds. The third shows pause, resume, remove and cancel through one
node obeyed by the others.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.model import Execution, Status
from stores.sqlite import SqliteStore
from tests.api_support import BASH_ECHO, ServeProcess, wait_for, write_script

pytestmark = pytest.mark.slow

NODES = 3
ONE_OFF = 600
SPREAD = 10.0
REPEATING = 10
LEASE = 3.0
ACTIVE = {Status.QUEUED, Status.RUNNING, Status.SCHEDULED}


@contextmanager
def cluster(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[list[ServeProcess]]:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    write_script(scripts, "echo.sh", BASH_ECHO)
    write_script(scripts, "sleep.sh", "#!/bin/bash\nsleep 30\n")
    db = tmp_path / "cronwell.db"
    args = ["--store", f"sqlite:///{db}", "--script-root", str(scripts)]
    nodes = [
        ServeProcess(
            [*args, "--node-id", f"n{i}", "--node-lease", str(LEASE)],
            tmp_path / f"n{i}.log",
            env={"CRONWELL_DATA_DIR": str(tmp_path / "data"), **(env or {})},
        )
        for i in range(NODES)
    ]
    try:
        for node in nodes:
            node.wait_healthy()
        yield nodes
    finally:
        for node in nodes:
            if node.proc.poll() is None:
                node.terminate()


def stored(tmp_path: Path) -> tuple[list[Any], list[Execution]]:
    store = SqliteStore(tmp_path / "cronwell.db")
    store.open()
    try:
        return store.list_jobs(), store.list_executions(limit=100_000)
    finally:
        store.close()


def schedule(nodes: list[ServeProcess], scripts: Path, start: datetime) -> dict[str, int]:
    """The jobs, round-robin through the nodes; job id -> occurrences it must have."""
    expected: dict[str, int] = {}
    with requests.Session() as http:
        user = http.post(
            f"{nodes[0].url}/api/users/", json={"name": "Ops", "email": "ops@example.com"}
        ).json()["user_id"]
        for i in range(ONE_OFF):
            job_id = f"once_{i:03d}"
            body = {
                "job_id": job_id,
                "job_type": "bash",
                "script_path": str(scripts / "echo.sh"),
                "run_date": (start + timedelta(seconds=SPREAD * i / ONE_OFF)).isoformat(),
            }
            response = http.post(f"{nodes[i % NODES].url}/api/schedule-job", json=body, timeout=10)
            assert response.status_code == 200, response.text
            expected[job_id] = 1
        for i in range(REPEATING):
            body = {
                "user_id": user,
                "name": f"every second {i}",
                "job_class_string": "jobs.echo.EchoJob",
                "interval_seconds": 1,
                "start_date": start.isoformat(),
                "end_date": (start + timedelta(seconds=SPREAD - 0.5)).isoformat(),
            }
            response = http.post(
                f"{nodes[i % NODES].url}/api/scheduler/jobs", json=body, timeout=10
            )
            assert response.status_code == 200, response.text
            expected[response.json()["job_id"]] = int(SPREAD)
    assert datetime.now(UTC) < start, "scheduling took longer than the lead: raise it"
    return expected


def settled(tmp_path: Path, after: datetime) -> bool:
    if datetime.now(UTC) < after:
        return False
    _, executions = stored(tmp_path)
    return not any(e.status in ACTIVE for e in executions)


def occurrences(executions: list[Execution]) -> Counter[tuple[str, datetime | None]]:
    return Counter((e.job_id, e.scheduled_for) for e in executions)


def test_three_nodes_fire_every_occurrence_exactly_once(tmp_path: Path) -> None:
    with cluster(tmp_path) as nodes:
        start = datetime.now(UTC) + timedelta(seconds=8)
        expected = schedule(nodes, tmp_path / "scripts", start)
        wait_for(
            lambda: settled(tmp_path, start + timedelta(seconds=SPREAD + 1)),
            60,
            "every occurrence to end",
            interval=0.5,
        )
        _, executions = stored(tmp_path)
    seen = occurrences(executions)
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1][:5]
    per_job = Counter(e.job_id for e in executions)
    assert per_job == Counter(expected)
    statuses = Counter(str(e.status) for e in executions)
    assert statuses == {"completed": ONE_OFF + REPEATING * int(SPREAD)}, statuses
    by_node = Counter(e.node for e in executions)
    assert set(by_node) <= {"n0", "n1", "n2"} and len(by_node) >= 2, by_node
    print(f"runs by node: {dict(by_node)}")


def test_a_killed_node_is_taken_over_and_nothing_fires_twice(tmp_path: Path) -> None:
    with cluster(tmp_path) as nodes:
        start = datetime.now(UTC) + timedelta(seconds=8)
        expected = schedule(nodes, tmp_path / "scripts", start)
        wait_for(lambda: datetime.now(UTC) >= start + timedelta(seconds=SPREAD / 2), 30, "halfway")
        nodes[2].proc.send_signal(signal.SIGKILL)
        nodes[2].proc.wait(10)
        killed_at = datetime.now(UTC)
        wait_for(
            lambda: settled(tmp_path, start + timedelta(seconds=SPREAD + LEASE + 2)),
            60,
            "every occurrence to end after the kill",
            interval=0.5,
        )
        _, executions = stored(tmp_path)
        listed = requests.get(f"{nodes[0].url}/api/scheduler/nodes", timeout=10).json()
    seen = occurrences(executions)
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1][:5]
    statuses = Counter(str(e.status) for e in executions)
    assert set(statuses) <= {"completed", "missed", "abandoned", "skipped"}, statuses
    for execution in executions:
        if execution.status is Status.SKIPPED:  # by policy: the dead node's run still
            # counted against max_instances until the sweep abandoned it
            assert expected[execution.job_id] > 1 and "max_instances" in execution.error
    for job_id, count in expected.items():
        runs = [e for e in executions if e.job_id == job_id]
        if count == 1:
            assert len(runs) == 1, f"{job_id}: {len(runs)} executions"
        else:  # a repeating job: one record per occurrence, whatever became of it
            assert len(runs) == count, f"{job_id}: {len(runs)} of {count} occurrences"
    for execution in executions:
        if execution.status is Status.ABANDONED:
            assert execution.node == "n2" and "node n2" in execution.error
            assert execution.completed_at is not None
            took = (execution.completed_at - killed_at).total_seconds()
            assert took <= LEASE + 2 + 1, f"abandoned {took:.1f} s after the kill"
    taken_over = [
        e
        for e in executions
        if e.status is Status.COMPLETED and e.started_at and e.started_at > killed_at
    ]
    assert taken_over and {e.node for e in taken_over} <= {"n0", "n1"}
    dead = {n["node_id"]: n["alive"] for n in listed["nodes"]}
    assert dead == {"n0": True, "n1": True, "n2": False}
    print(f"after the kill: {dict(statuses)}")


def stays_quiet(fired: Callable[[], list[Execution]], seconds: float) -> None:
    """Fail as soon as `fired` finds a run, or pass once `seconds` went by without one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert fired() == [], "a node fired a job it was told to stop"
        time.sleep(0.1)


def test_changes_and_cancels_through_one_node_are_obeyed_by_the_others(tmp_path: Path) -> None:
    with cluster(tmp_path) as nodes, requests.Session() as http:
        n0, n1, n2 = (node.url for node in nodes)
        user = http.post(f"{n0}/api/users/", json={"name": "A", "email": "a@example.com"}).json()
        body = {
            "user_id": user["user_id"],
            "name": "ticker",
            "job_class_string": "jobs.echo.EchoJob",
            "interval_seconds": 1,
        }
        job_id = http.post(f"{n0}/api/scheduler/jobs", json=body).json()["job_id"]

        def fired_since(moment: datetime) -> list[Execution]:
            _, executions = stored(tmp_path)
            return [
                e
                for e in executions
                if e.job_id == job_id and e.scheduled_for is not None and e.scheduled_for > moment
            ]

        wait_for(lambda: fired_since(datetime.now(UTC) - timedelta(seconds=5)), 10, "ticks")
        assert http.patch(f"{n1}/api/scheduler/jobs/{job_id}/pause").status_code == 200
        paused_at = datetime.now(UTC)
        # for 2.5 s (what a node that missed the pause would have fired by then), looking
        # every 0.1 s, so a fire that should not happen fails the test at once
        stays_quiet(lambda: fired_since(paused_at + timedelta(seconds=1)), 2.5)
        assert http.patch(f"{n2}/api/scheduler/jobs/{job_id}/resume").status_code == 200
        resumed_at = datetime.now(UTC)
        wait_for(lambda: fired_since(resumed_at), 5, "ticks after the resume")
        assert http.delete(f"{n0}/api/scheduler/jobs/{job_id}").status_code == 200
        removed_at = datetime.now(UTC)
        stays_quiet(lambda: fired_since(removed_at + timedelta(seconds=1)), 2.5)

        long = {
            "job_id": "long",
            "job_type": "bash",
            "script_path": str(tmp_path / "scripts" / "sleep.sh"),
            "run_date": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }
        assert http.post(f"{n0}/api/schedule-job", json=long).status_code == 200
        run = http.post(f"{n0}/api/scheduler/jobs/long/run").json()["execution_id"]
        wait_for(
            lambda: (
                http.get(f"{n0}/api/scheduler/executions/{run}").json()["data"]["status"]
                == "running"
            ),
            10,
            "the long run to start",
        )
        asked = time.monotonic()
        cancelled = http.post(f"{n1}/api/scheduler/executions/{run}/cancel", timeout=15)
        took = time.monotonic() - asked
        assert cancelled.status_code == 200, cancelled.text
        record = http.get(f"{n2}/api/scheduler/executions/{run}").json()["data"]
        assert (record["status"], record["node"]) == ("cancelled", "n0")
        assert took < 2.0, f"the cancel took {took:.2f} s"
