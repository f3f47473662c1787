"""The MongoDB server goes away while `cronwell serve` runs on it, and comes back.

A secantusdb server of this test's own (it is killed, so not the session's) carries a
running service with date jobs due before, during and after the outage. While the
server is gone, requests answer 500 in their surface's envelope within the store's
timeouts instead of hanging; the engine keeps retrying; once the server is started again
on the same data folder and port, firing resumes by itself and every fire ends in
exactly one recorded execution, nothing recorded before the outage lost. A frozen
server (SIGSTOP: connections open, no answers) is the case a socket timeout is for.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api_support import MARK, ServeProcess, post_mark_job, wait_for, write_script
from tests.mongo_server import SECANTUS_PLATFORM, SecantusProcess

pytestmark = [
    pytest.mark.mongo_real,
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not SECANTUS_PLATFORM, reason="secantusdb has no wheel for this platform"),
]
JOBS = 30
SPREAD = 12.0
#: the store's own server selection timeout is 5 s; give a read's 500 that long and some
ANSWER_WITHIN = 15.0
#: A write waits for the engine's loop, and the loop spends the outage in failing claims
#: of the fires falling due, each one store timeout long, back to back (its backoff counts
#: from when a claim began, so a 5 s claim leaves nothing to wait): measured 20-26 s.
WRITE_ANSWER_WITHIN = 45.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SecantusProcess]:
    # journaled commits, as mongod's (see JOURNALED_COMMITS): this server gets killed
    process = SecantusProcess(tmp_path / "mongo", sync_on_commit=True).start()
    try:
        yield process
    finally:
        if process.proc is not None:
            process.thaw()
        process.kill()


def timed_get(url: str) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = requests.get(url, timeout=60)
    return time.monotonic() - started, response


def assert_store_error(response: requests.Response, key: str) -> None:
    assert response.status_code in (500, 503), (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert list(body) == [key], body
    # either the driver's failure or the API's bounded wait running out (api/storecalls.py)
    said = body[key]
    assert "mongo store failed" in said or said.startswith("Store unavailable"), body
    assert "Traceback" not in said, body


def stop(service: ServeProcess) -> int | None:
    """SIGTERM; SIGKILL if it has not stopped in time (then None)."""
    try:
        return service.terminate(timeout=60)
    except subprocess.TimeoutExpired:
        service.proc.kill()
        service.proc.wait(10)
        return None


def marks_of(path: Path) -> Counter[str]:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def test_server_killed_and_restarted_while_the_service_runs(
    tmp_path: Path, server: SecantusProcess
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    marks = tmp_path / "marks.txt"
    script = write_script(scripts, "mark.sh", MARK)
    env = {"DB_NAME": "cronwell_outage", "CRONWELL_DATA_DIR": str(tmp_path / "data")}
    args = ["--store", server.uri, "--script-root", str(scripts)]
    service = ServeProcess(args, tmp_path / "serve.log", env=env).wait_healthy()
    base = service.url
    try:
        user = requests.post(
            f"{base}/api/users/", json={"name": "Ada", "email": "ada@example.com"}, timeout=10
        ).json()["user_id"]
        start = datetime.now(UTC) + timedelta(seconds=2 + 0.03 * JOBS)
        ids = [f"outage_{i:02d}" for i in range(JOBS)]
        for i, job_id in enumerate(ids):
            when = (start + timedelta(seconds=SPREAD * i / JOBS)).isoformat()
            response = post_mark_job(requests, base, job_id, script, when, marks)
            assert response.status_code == 200, response.text
        wait_for(lambda: len(marks_of(marks)) >= JOBS // 4, 30, "a quarter of the fires")

        server.kill()
        down_at = time.monotonic()
        took, scripts_answer = timed_get(f"{base}/api/jobs")
        assert took < ANSWER_WITHIN, f"GET /api/jobs took {took:.1f} s with the store gone"
        assert_store_error(scripts_answer, "error")
        took, scheduler_answer = timed_get(f"{base}/api/scheduler/jobs")
        assert took < ANSWER_WITHIN, f"GET /api/scheduler/jobs took {took:.1f} s"
        assert_store_error(scheduler_answer, "detail")
        # writes go through the engine's loop, which is retrying its own store writes
        started = time.monotonic()
        refused = post_mark_job(
            requests, base, "during_outage", script, "2099-01-01T00:00:00", marks
        )
        took = time.monotonic() - started
        assert took < WRITE_ANSWER_WITHIN, f"POST /api/schedule-job took {took:.1f} s"
        assert_store_error(refused, "error")
        started = time.monotonic()
        refused = requests.post(
            f"{base}/api/users/", json={"name": "Bob", "email": "bob@example.com"}, timeout=60
        )
        took = time.monotonic() - started
        assert took < WRITE_ANSWER_WITHIN, f"POST /api/users/ took {took:.1f} s"
        assert_store_error(refused, "detail")
        wait_for(lambda: time.monotonic() - down_at > 4, 10, "the outage to last 4 s")

        server.start()  # same port, same data folder
        assert server.starts == 2

        def all_recorded() -> bool:
            listing = requests.get(
                f"{base}/api/scheduler/executions", params={"limit": 1}, timeout=10
            )
            if listing.status_code != 200 or listing.json()["total"] < JOBS:
                return False
            for status in ("queued", "running", "scheduled"):
                body = requests.get(
                    f"{base}/api/scheduler/executions",
                    params={"status": status, "limit": 1},
                    timeout=10,
                ).json()
                if body["total"]:
                    return False
            return True

        wait_for(all_recorded, 90, "every fire to be recorded after the server came back")
        ran = marks_of(marks)
        for job_id in ids:
            body = requests.get(
                f"{base}/api/scheduler/executions", params={"job_id": job_id}, timeout=10
            ).json()
            assert body["total"] == 1, (job_id, body)
            (execution,) = body["data"]
            # the default 60 s misfire grace covers the outage: late fires ran late
            assert execution["status"] == "completed", execution
            assert ran[job_id] == 1, f"{job_id} ran {ran[job_id]} times"
        user_after = requests.get(f"{base}/api/users/{user}", timeout=10)
        assert user_after.status_code == 200 and user_after.json()["data"]["name"] == "Ada"
        assert requests.get(f"{base}/api/jobs", timeout=10).json()["count"] == JOBS

        # and it still takes new work: a job scheduled now fires
        fresh = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        response = post_mark_job(requests, base, "after_outage", script, fresh, marks)
        assert response.status_code == 200, response.text
        wait_for(lambda: marks_of(marks)["after_outage"] == 1, 20, "the new job to fire")
    finally:
        stopped = stop(service)
    assert stopped == 0
    # the engine said what it was doing while the store was gone
    assert "trying again" in service.output() or "retrying" in service.output()


def test_a_frozen_server_times_out_instead_of_hanging(
    tmp_path: Path, server: SecantusProcess
) -> None:
    env = {"DB_NAME": "cronwell_frozen", "CRONWELL_DATA_DIR": str(tmp_path / "data")}
    service = ServeProcess(["--store", server.uri], tmp_path / "serve.log", env=env).wait_healthy()
    try:
        assert requests.get(f"{service.url}/api/jobs", timeout=10).status_code == 200
        server.freeze()
        try:
            took, answer = timed_get(f"{service.url}/api/scheduler/jobs")
        finally:
            server.thaw()
        assert_store_error(answer, "detail")
        # the store's socket timeout (15 s by default) ends it; was 35 s without one
        assert took < 25, f"a frozen server held the request for {took:.1f} s"
        wait_for(
            lambda: requests.get(f"{service.url}/api/jobs", timeout=30).status_code == 200,
            30,
            "the thawed server to answer again",
        )
    finally:
        stop(service)


#: a SIGTERM with the server gone: the keeper's bounded join (2 s), the client's bounded
#: close (1 s) and Sanic's own stop; it took 15.5-16 s before both bounds
STOP_WITHIN = 8.0


def test_a_sigterm_with_the_server_gone_is_not_held_for_its_timeouts(
    tmp_path: Path, server: SecantusProcess
) -> None:
    env = {"DB_NAME": "cronwell_gone", "CRONWELL_DATA_DIR": str(tmp_path / "data")}
    service = ServeProcess(["--store", server.uri], tmp_path / "serve.log", env=env).wait_healthy()
    try:
        assert requests.get(f"{service.url}/api/jobs", timeout=10).status_code == 200
        server.kill()
        time.sleep(0.3)  # the keeper's next tick is now in a call to the missing server
        started = time.monotonic()
        status = service.terminate(timeout=60)
        took = time.monotonic() - started
        assert status == 0, service.output()
        assert took < STOP_WITHIN, f"SIGTERM took {took:.1f} s with the server gone"
        assert "not deregistering" in (tmp_path / "serve.log").read_text()
    finally:
        stop(service)
