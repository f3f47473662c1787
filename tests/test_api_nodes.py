"""`GET /api/scheduler/nodes` and the node recorded on executions, on a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from engine.model import Node
from stores.sqlite import SqliteStore
from tests.api_support import make_settings, running_server


def test_the_node_lists_itself_and_a_dead_one_and_records_itself_on_runs(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "shared.db")
    store.open()
    long_ago = datetime.now(UTC) - timedelta(minutes=2)
    store.heartbeat(Node("gone:1", started_at=long_ago, last_heartbeat=long_ago))
    settings = make_settings(tmp_path, node_id="node-a")
    with running_server(settings, store) as live:
        body = requests.get(live.url + "/api/scheduler/nodes", timeout=10).json()
        assert body["status"] == "success" and body["total"] == 2
        gone, this = body["nodes"]
        assert (gone["node_id"], gone["alive"], gone["this_node"]) == ("gone:1", False, False)
        assert (this["node_id"], this["alive"], this["this_node"]) == ("node-a", True, True)
        assert this["running"] == 0 and this["lease_seconds"] == 10.0
        assert set(this) == {
            "node_id", "started_at", "last_heartbeat", "lease_seconds", "alive", "running",
            "this_node",
        }  # fmt: skip
        user = requests.post(
            live.url + "/api/users/", json={"name": "Ann", "email": "ann@example.com"}, timeout=10
        )
        job = requests.post(
            live.url + "/api/scheduler/jobs",
            json={
                "user_id": user.json()["user_id"],
                "name": "hello",
                "job_class_string": "jobs.echo.EchoJob",
                "month": "*", "day_of_week": "*", "day_of_month": "*", "hour": "*",
                "minute": "0",
            },
            timeout=10,
        )  # fmt: skip
        assert job.status_code in (200, 201), job.text
        job_id = job.json()["job_id"]
        run = requests.post(live.url + f"/api/scheduler/jobs/{job_id}/run", timeout=10)
        assert run.status_code == 200, run.text
        execution_id = run.json()["execution_id"]
        got = requests.get(live.url + f"/api/scheduler/executions/{execution_id}", timeout=10)
        assert got.json()["data"]["node"] == "node-a"


def test_a_bad_node_id_or_lease_is_one_line_and_exit_1(tmp_path: Path) -> None:
    import subprocess
    import sys

    for args, words in (
        (["--node-id", "has space"], "node id must be"),
        (["--node-lease", "1"], "node lease must be 3 to 3600 seconds"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "api", "serve", "--check", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert words in done.stderr and done.stderr.count("\n") == 1
