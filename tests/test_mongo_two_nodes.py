"""Two `cronwell serve` processes on one MongoDB database (the basis of running several
nodes): each sees what the other wrote, the server's unique index holds across them,
and a job that both engines have loaded fires once, not once per node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.api_support import MARK, ServeProcess, post_mark_job, wait_for, write_script
from tests.mongo_server import MongoTarget

pytestmark = [pytest.mark.mongo_real, pytest.mark.slow]
JOBS = 10


class Nodes:
    """`cronwell serve` processes on one database, each with its own data folder."""

    def __init__(self, mongo: MongoTarget, db_name: str, tmp: Path) -> None:
        self.args = ["--store", mongo.uri, "--script-root", str(tmp / "scripts")]
        self.db_name = db_name
        self.tmp = tmp
        self.started: list[ServeProcess] = []

    def start(self, node: str, port: int | None = None) -> ServeProcess:
        env = {"DB_NAME": self.db_name, "CRONWELL_DATA_DIR": str(self.tmp / f"data-{node}")}
        log = self.tmp / f"{node}-{len(self.started)}.log"
        self.started.append(ServeProcess(self.args, log, env=env, port=port))
        return self.started[-1].wait_healthy()

    def stop_all(self) -> None:
        for process in self.started:
            process.terminate()


@pytest.fixture
def nodes(mongo: MongoTarget, tmp_path: Path) -> Iterator[Nodes]:
    (tmp_path / "scripts").mkdir()
    with mongo.database() as name:
        running = Nodes(mongo, name, tmp_path)
        try:
            yield running
        finally:
            running.stop_all()


def test_each_node_sees_the_others_writes(nodes: Nodes) -> None:
    a, b = nodes.start("a"), nodes.start("b")
    user = requests.post(
        f"{a.url}/api/users/", json={"name": "Ada", "email": "Ada@Example.com"}, timeout=10
    ).json()["user_id"]
    seen = requests.get(f"{b.url}/api/users/{user}", timeout=10)
    assert seen.status_code == 200 and seen.json()["data"]["email"] == "Ada@Example.com"
    taken = requests.post(
        f"{b.url}/api/users/", json={"name": "Ada 2", "email": "ada@example.COM"}, timeout=10
    )
    assert taken.status_code == 409, taken.text  # the server's unique index, not b's memory
    job = requests.post(
        f"{a.url}/api/scheduler/jobs",
        json={
            "user_id": user,
            "job_class_string": "jobs.echo.EchoJob",
            "name": "made on a",
            "minute": "0",
            "hour": "9",
        },
        timeout=10,
    ).json()["job_id"]
    on_b = requests.get(f"{b.url}/api/scheduler/jobs/{job}", timeout=10)
    assert on_b.status_code == 200 and on_b.json()["data"]["name"] == "made on a"
    assert job in [
        j["job_id"] for j in requests.get(f"{b.url}/api/jobs", timeout=10).json()["jobs"]
    ]
    run = requests.post(f"{b.url}/api/scheduler/jobs/{job}/run", timeout=10).json()
    execution = run["execution_id"]

    def finished_on_a() -> bool:
        got = requests.get(f"{a.url}/api/scheduler/executions/{execution}", timeout=10)
        return got.status_code == 200 and got.json()["data"]["status"] == "completed"

    wait_for(finished_on_a, 15, "b's run of a's job to show as completed on a")
    assert requests.delete(f"{b.url}/api/users/{user}", timeout=10).status_code == 200
    assert requests.get(f"{a.url}/api/users/{user}", timeout=10).status_code == 404


def test_a_job_both_engines_loaded_fires_once(nodes: Nodes, tmp_path: Path) -> None:
    a, b = nodes.start("a"), nodes.start("b")
    marks = tmp_path / "marks.txt"
    script = write_script(tmp_path / "scripts", "mark.sh", MARK)
    due = datetime.now(UTC) + timedelta(seconds=6)
    ids = [f"shared_{i}" for i in range(JOBS)]
    for job_id in ids:
        response = post_mark_job(requests, a.url, job_id, script, due.isoformat(), marks)
        assert response.status_code == 200, response.text
    # b loads its jobs when it starts: restart it so both engines hold all of them
    assert b.terminate() == 0
    b2 = nodes.start("b", port=b.port)
    assert datetime.now(UTC) < due, "b restarted too late for the race"

    def all_done() -> bool:
        body = requests.get(f"{b2.url}/api/scheduler/executions", timeout=10).json()
        return body["total"] >= JOBS and all(e["status"] == "completed" for e in body["data"])

    wait_for(all_done, 30, "every shared job's run")
    body = requests.get(
        f"{a.url}/api/scheduler/executions", params={"limit": 100}, timeout=10
    ).json()
    assert body["total"] == JOBS, body  # once each, not once per node
    assert Counter(marks.read_text().split()) == Counter(ids)
    ran_on = Counter(e["node"] for e in body["data"])  # the node each run records
    assert sum(ran_on.values()) == JOBS and None not in ran_on, ran_on
    print(f"fires won by each node: {ran_on}")
