"""Notifications for the ends no worker records: `abandoned` and `missed`, for real.

A real `cronwell serve` process runs a bash script that sleeps; it is killed with
SIGKILL while the script runs, and restarted on the same SQLite file. The run it left
`running` is marked abandoned, by recovery at start when the restarted process is the
same node's next life (same CRONWELL_NODE_ID), or by the periodic sweep when it is a new
node that waits for the dead one's lease to pass. Either way the job's webhook (a real
HTTP server on loopback) receives `execution.abandoned` and the attempt is recorded on
the execution's `notifications`. A one-off job whose run date passed while the service
was down, beyond the misfire grace, is recorded `missed` and notifies the same way.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api_support import ServeProcess, wait_for, write_script
from tests.test_api_notifications import Hook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SLEEPER = '#!/bin/bash\necho "started $$" > "$1"\nsleep 60\n'
ECHO = '#!/bin/bash\necho "ran" >> "$1"\n'


def _schedule(url: str, body: dict[str, Any]) -> None:
    response = requests.post(f"{url}/api/schedule-job", json=body, timeout=10)
    assert response.status_code == 200, response.text


def _execution(url: str, execution_id: str) -> dict[str, Any]:
    response = requests.get(f"{url}/api/scheduler/executions/{execution_id}", timeout=5)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


def _only_execution(url: str, job_id: str) -> dict[str, Any]:
    response = requests.get(f"{url}/api/scheduler/executions", params={"job_id": job_id}, timeout=5)
    assert response.status_code == 200, response.text
    (execution,) = response.json()["data"]
    found: dict[str, Any] = execution
    return found


@pytest.mark.parametrize(
    "second_node",
    ["notify-crash", "notify-crash-next"],
    ids=["recovery-of-the-same-node", "sweep-by-a-new-node"],
)
def test_a_run_killed_with_the_service_notifies_abandoned_and_a_fire_missed_while_down_notifies_missed(
    tmp_path: Path, second_node: str
) -> None:
    hook = Hook()
    try:
        scripts = tmp_path / "scripts"
        scripts.mkdir()
        sleeper = write_script(scripts, "sleeper.sh", SLEEPER)
        echo = write_script(scripts, "echo.sh", ECHO)
        started, ran = tmp_path / "started.txt", tmp_path / "ran.txt"
        args = ["--store", f"sqlite:///{tmp_path / 'cronwell.db'}", "--script-root", str(scripts)]
        env = {
            "CRONWELL_DATA_DIR": str(tmp_path / "data"),
            "CRONWELL_MISFIRE_GRACE": "1",
            "CRONWELL_NODE_LEASE": "8",  # a new node starts within it: its sweep abandons
            "CRONWELL_NOTIFY_BACKOFF": "0.1",
        }
        first = ServeProcess(
            args, tmp_path / "first.log", env={**env, "CRONWELL_NODE_ID": "notify-crash"}
        ).wait_healthy()
        # due while the service is down: beyond the 1 s grace when it is back
        due = datetime.now(UTC) + timedelta(seconds=4)
        _schedule(
            first.url,
            {
                "job_id": "while_down",
                "job_type": "bash",
                "script_path": str(echo),
                "run_date": due.isoformat(),
                "args": [str(ran)],
                "notify": {"on": ["missed"], "webhook": hook.url},
            },
        )
        _schedule(
            first.url,
            {
                "job_id": "sleeper",
                "job_type": "bash",
                "script_path": str(sleeper),
                "run_date": "2099-01-01T00:00:00",
                "args": [str(started)],
                # everything but abandoned: only the end the crash makes may notify
                "notify": {"on": ["abandoned"], "webhook": hook.url, "secret": "k"},
            },
        )
        run = requests.post(f"{first.url}/api/scheduler/jobs/sleeper/run", timeout=10)
        assert run.status_code == 200, run.text
        execution_id = run.json()["execution_id"]
        wait_for(started.exists, 15, "the script to start")
        wait_for(
            lambda: _execution(first.url, execution_id)["status"] == "running",
            15,
            "the running mark to be stored",
        )
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        assert datetime.now(UTC) < due, "the kill came after the one-off job was due"
        assert hook.bodies() == [], "something notified before the crash"
        wait_for(lambda: datetime.now(UTC) > due + timedelta(seconds=1.5), 10, "the grace to pass")

        second = ServeProcess(
            args, tmp_path / "second.log", env={**env, "CRONWELL_NODE_ID": second_node}
        ).wait_healthy()
        try:
            wait_for(lambda: len(hook.bodies()) >= 2, 30, "two notifications")
            sent = {body["job_id"]: body for body in hook.bodies()}
            assert len(hook.bodies()) == 2 and set(sent) == {"sleeper", "while_down"}
            abandoned = sent["sleeper"]
            assert abandoned["event"] == "execution.abandoned"
            assert abandoned["execution"]["id"] == execution_id
            assert abandoned["execution"]["status"] == "abandoned"
            missed = sent["while_down"]
            assert missed["event"] == "execution.missed"
            assert missed["execution"]["status"] == "missed"
            assert not ran.exists(), "the missed job ran"
            with hook.lock:
                headers = {json.loads(raw)["job_id"]: sent for sent, raw in hook.posts}
            assert headers["sleeper"]["X-Cronwell-Signature"].startswith("sha256=")

            # each attempt is recorded on its execution
            def recorded(job_id: str) -> dict[str, Any] | None:
                execution = _only_execution(second.url, job_id)
                return execution if execution["notifications"] else None

            for job_id, status in (("sleeper", "abandoned"), ("while_down", "missed")):
                execution = wait_for(lambda j=job_id: recorded(j), 10, f"{job_id}'s record")
                assert execution["status"] == status
                (attempt,) = execution["notifications"]
                assert attempt["target"] == f"webhook {hook.url}"
                assert attempt["outcome"] == "delivered (HTTP 200)"
                assert attempt["attempt"] == 1
            if second_node != "notify-crash":
                sweeper = _only_execution(second.url, "sleeper")["error"]
                assert "node notify-crash stopped renewing its lease" in sweeper
            assert second.terminate() == 0
        finally:
            second.terminate()
    finally:
        hook.close()
