"""Crash recovery with real processes: `kill -9` the service mid-way through a few
hundred due fires, start it again on the same SQLite file, and check that nothing was
lost or run twice.

Each job runs a bash script that appends its job id to a marks file, so the marks file
is the ground truth of what really ran. The service runs with a 1 s misfire grace, so
fires that fall due while it is down are either run late on restart (within 1 s) or
recorded as `missed`: both outcomes are exercised, and every fire must end in exactly
one terminal execution.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from engine.model import Status
from stores.sqlite import SqliteStore
from tests.api_support import ServeProcess, wait_for, write_script

pytestmark = pytest.mark.slow

JOBS = 300
SPREAD_SECONDS = 8.0  # long enough that fires remain due after the restart, on a busy machine
#: one node id across the restart: the second process is the first one's next life, so it
#: takes over what the first claimed at once (another id would wait for its lease)
GRACE_ENV = {
    "CRONWELL_MISFIRE_GRACE": "1",
    "CRONWELL_SHUTDOWN_TIMEOUT": "5",
    "CRONWELL_NODE_ID": "crash-test",
}


def count_marks(marks: Path) -> Counter[str]:
    if not marks.exists():
        return Counter()
    return Counter(line for line in marks.read_text().splitlines() if line)


def test_kill_9_mid_run_then_restart_loses_nothing_and_runs_nothing_twice(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    marks = tmp_path / "marks.txt"
    script = write_script(scripts, "mark.sh", '#!/bin/bash\necho "$1" >> "$2"\n')
    db = tmp_path / "cronwell.db"
    args = ["--store", f"sqlite:///{db}", "--script-root", str(scripts)]
    env = {**GRACE_ENV, "CRONWELL_DATA_DIR": str(tmp_path / "data")}

    first = ServeProcess(args, tmp_path / "first.log", env=env).wait_healthy()
    start = datetime.now(UTC) + timedelta(seconds=2)
    ids = [f"crash_{i:03d}" for i in range(JOBS)]
    with requests.Session() as http:
        for i, job_id in enumerate(ids):
            run_date = start + timedelta(seconds=SPREAD_SECONDS * i / JOBS)
            response = http.post(
                f"{first.url}/api/schedule-job",
                json={
                    "job_id": job_id,
                    "job_type": "bash",
                    "script_path": str(script),
                    "run_date": run_date.isoformat(),
                    "args": [job_id, str(marks)],
                },
                timeout=10,
            )
            assert response.status_code == 200, response.text

    # let roughly a third of the fires happen, then kill the service without warning
    wait_for(lambda: sum(count_marks(marks).values()) >= JOBS // 3, 30, "a third of the fires")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    ran_before_crash = sum(count_marks(marks).values())
    assert ran_before_crash < JOBS, "the crash came too late to test anything"

    # stay down long enough that some fires are later than the 1 s grace
    down_until = datetime.now(UTC) + timedelta(seconds=2)
    wait_for(lambda: datetime.now(UTC) >= down_until, 5, "downtime to pass")

    second = ServeProcess(args, tmp_path / "second.log", env=env).wait_healthy()
    last_due = start + timedelta(seconds=SPREAD_SECONDS)

    def settled() -> bool:
        if datetime.now(UTC) < last_due + timedelta(seconds=1):
            return False
        active = 0
        for status in ("queued", "running", "scheduled"):
            body = requests.get(
                f"{second.url}/api/scheduler/executions",
                params={"status": status, "limit": 1},
                timeout=5,
            ).json()
            active += body["total"]
        return active == 0

    wait_for(settled, 30, "every fire to reach a terminal status")
    assert second.terminate() == 0

    store = SqliteStore(db)
    store.open()
    try:
        stored_ids = {job.id for job in store.list_jobs()}
        assert stored_ids == set(ids), "a job was lost in the crash"
        ran = count_marks(marks)
        statuses: Counter[str] = Counter()
        for job_id in ids:
            executions = store.list_executions(job_id=job_id)
            assert len(executions) == 1, f"{job_id} has {len(executions)} executions"
            (execution,) = executions
            assert execution.terminal, f"{job_id} left {execution.status}"
            statuses[str(execution.status)] += 1
            if execution.status == Status.COMPLETED:
                assert ran[job_id] == 1, f"{job_id} completed but ran {ran[job_id]} times"
            elif execution.status == Status.ABANDONED:
                # killed with the service; its child may or may not have written
                assert ran[job_id] <= 1
                assert "stopped" in execution.error
            else:
                assert execution.status == Status.MISSED, f"{job_id}: {execution.status}"
                assert ran[job_id] == 0, f"{job_id} is recorded missed but ran"
            assert store.get_job(job_id).next_run_time is None
        assert max(ran.values()) == 1, "a fire ran twice"
        assert statuses["completed"] >= ran_before_crash - statuses["abandoned"]
        print(f"after the crash: {dict(statuses)}, ran before it: {ran_before_crash}")
        assert statuses["missed"] > 0, f"no fire was late beyond the grace: {statuses}"
        assert statuses["completed"] > ran_before_crash, "nothing ran after the restart"
    finally:
        store.close()
