"""Overlap policies on a real clock: a real `cronwell serve` on loopback, real bash
scripts that sleep longer than their every-second trigger, a few seconds of firing.

Each job's runs overlap the next fire, so each policy has to decide, and its decision
is read back from the executions the service recorded: `skip` records the fire
`skipped`, `queue` holds one fire until the running one ends, `replace` cancels the
running one (killing its script) and starts, `allow` overlaps up to max_instances.
The skipped, cancelled and timed-out ends also notify a real webhook, one POST each,
recorded on the execution. Nothing here asserts a count of fires, which a busy
machine may shift by one; every assertion is about what each decision means.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api_support import ServeProcess, wait_for, write_script
from tests.test_api_notifications import Hook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: each run outlasts the 1 s interval, so every fire meets a running one
NAP = '#!/bin/bash\necho "start $1 $$" >> "$2"\nsleep 1.6\necho "end $1 $$" >> "$2"\n'
FIRING_SECONDS = 4.5
POLICIES = {"skip": 1, "queue": 1, "replace": 1, "allow": 2}  # overlap: max_instances


def _at(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def _executions(url: str, job_id: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{url}/api/scheduler/executions", params={"job_id": job_id, "limit": 100}, timeout=5
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return sorted(found, key=lambda e: e["created_at"])


def _overlapping(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _at(a["started_at"]) < _at(b["completed_at"]) and _at(b["started_at"]) < _at(
        a["completed_at"]
    )


def test_each_overlap_policy_decides_on_a_real_clock_and_records_it(tmp_path: Path) -> None:
    hook = Hook()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    write_script(scripts, "nap.sh", NAP)
    marks = tmp_path / "marks.txt"
    args = ["--store", f"sqlite:///{tmp_path / 'cronwell.db'}", "--script-root", str(scripts)]
    env = {"CRONWELL_DATA_DIR": str(tmp_path / "data"), "CRONWELL_NOTIFY_BACKOFF": "0.1"}
    service = ServeProcess(args, tmp_path / "serve.log", env=env).wait_healthy()
    try:
        url = service.url
        user = requests.post(
            f"{url}/api/users/", json={"name": "Ada", "email": "ada@example.com"}, timeout=10
        )
        assert user.status_code == 200, user.text
        user_id = user.json()["user_id"]
        notify_on = {"skip": ["skipped"], "replace": ["cancelled"]}
        jobs: dict[str, str] = {}
        for policy, max_instances in POLICIES.items():
            body: dict[str, Any] = {
                "user_id": user_id,
                "job_class_string": "jobs.custom.CustomScriptJob",
                "name": f"overlap {policy}",
                "interval_seconds": 1,
                "pub_args": ["nap", policy, str(marks)],
                "overlap": policy,
                "max_instances": max_instances,
            }
            if policy in notify_on:
                body["notify"] = {"on": notify_on[policy], "webhook": hook.url}
            created = requests.post(f"{url}/api/scheduler/jobs", json=body, timeout=10)
            assert created.status_code == 200, created.text
            jobs[policy] = created.json()["job_id"]
        # a run that outlives its timeout notifies `timeout`
        timed = requests.post(
            f"{url}/api/scheduler/jobs",
            json={
                "user_id": user_id,
                "job_class_string": "jobs.custom.CustomScriptJob",
                "name": "too slow",
                "cron": "@yearly",
                "timeout": 0.5,
                "pub_args": ["nap", "timeout", str(marks)],
                "notify": {"on": ["timeout"], "webhook": hook.url},
            },
            timeout=10,
        )
        assert timed.status_code == 200, timed.text
        timed_id = timed.json()["job_id"]
        assert requests.post(f"{url}/api/scheduler/jobs/{timed_id}/run", timeout=10).ok

        wait_for(
            lambda: all(len(_executions(url, j)) >= 4 for j in jobs.values()),
            FIRING_SECONDS + 15,
            "four fires of every job",
        )
        for job_id in jobs.values():
            paused = requests.patch(f"{url}/api/scheduler/jobs/{job_id}/pause", timeout=10)
            assert paused.status_code == 200, paused.text

        def settled() -> bool:
            every = [e for j in [*jobs.values(), timed_id] for e in _executions(url, j)]
            return all(e["status"] not in ("queued", "running", "scheduled") for e in every)

        wait_for(settled, 20, "every run to end")
        runs = {policy: _executions(url, job_id) for policy, job_id in jobs.items()}
        for policy, found in runs.items():
            decisions = [
                f"{e['status']}/{(e['overlap_decision'] or '-').split(':')[0]}" for e in found
            ]
            print(f"\noverlap={policy}: {', '.join(decisions)}")
        _check_skip(runs["skip"])
        _check_queue(runs["queue"])
        _check_replace(runs["replace"])
        _check_allow(runs["allow"])
        (slow,) = _executions(url, timed_id)
        assert slow["status"] == "timeout", slow

        # one POST per skipped, cancelled and timed-out end, each recorded
        ends = [
            e
            for e in [*runs["skip"], *runs["replace"], slow]
            if e["status"] in ("skipped", "cancelled", "timeout")
        ]
        wait_for(lambda: len(hook.bodies()) >= len(ends), 15, "a notification per end")
        wait_for(
            lambda: all(
                e["notifications"]
                for j in (jobs["skip"], jobs["replace"], timed_id)
                for e in _executions(url, j)
                if e["status"] in ("skipped", "cancelled", "timeout")
            ),
            15,
            "every notification recorded",
        )
        sent = sorted((b["execution"]["id"], b["event"]) for b in hook.bodies())
        assert sent == sorted((e["_id"], f"execution.{e['status']}") for e in ends)
        assert service.terminate() == 0
    finally:
        service.terminate()
        hook.close()


def _check_skip(runs: list[dict[str, Any]]) -> None:
    ran = [e for e in runs if e["status"] == "completed"]
    skipped = [e for e in runs if e["status"] == "skipped"]
    assert ran and skipped, [(e["status"], e["overlap_decision"]) for e in runs]
    for e in skipped:
        assert e["overlap_decision"].startswith("skipped: max_instances reached"), e
        assert e["overlap_decision"].endswith("overlap=skip"), e
        assert e["started_at"] is None  # never ran
    assert all(e["overlap_decision"] in ("", None) for e in ran)
    assert not any(_overlapping(a, b) for a in ran for b in ran if a is not b)


def _check_queue(runs: list[dict[str, Any]]) -> None:
    waited = [e for e in runs if (e["overlap_decision"] or "").startswith("queued:")]
    assert waited, [(e["status"], e["overlap_decision"]) for e in runs]
    ran = [e for e in runs if e["started_at"] is not None]
    for e in waited:
        if e["status"] != "completed":  # paused while it waited: withdrawn, cancelled
            assert e["status"] == "cancelled", e
            continue
        earlier = [r for r in ran if r["created_at"] < e["created_at"]]
        # it started once the run it waited for had ended, never beside it
        assert earlier and all(_at(r["completed_at"]) <= _at(e["started_at"]) for r in earlier)
    assert any(e["status"] == "completed" for e in waited), "no queued fire ever ran"
    assert not any(_overlapping(a, b) for a in ran for b in ran if a is not b)


def _check_replace(runs: list[dict[str, Any]]) -> None:
    by_id = {e["_id"]: e for e in runs}
    replaced = [e for e in runs if e["status"] == "cancelled" and "replaced by" in e["error"]]
    assert replaced, [(e["status"], e["overlap_decision"], e["error"]) for e in runs]
    for old in replaced:
        newer_id = old["error"].split("replaced by execution ", 1)[1].split()[0]
        newer = by_id[newer_id]
        assert newer["overlap_decision"].startswith(
            f"replaced: cancelled execution(s) {old['_id']}"
        )
        # the old script was stopped: it ended before its 1.6 s nap could
        if old["started_at"] is not None:
            assert (_at(old["completed_at"]) - _at(old["started_at"])).total_seconds() < 1.6


def _check_allow(runs: list[dict[str, Any]]) -> None:
    allowed = [e for e in runs if (e["overlap_decision"] or "").startswith("allowed:")]
    assert allowed, [(e["status"], e["overlap_decision"]) for e in runs]
    ran = [e for e in runs if e["status"] == "completed"]
    for e in allowed:
        assert "max_instances=2" in e["overlap_decision"], e
    together = [e for e in allowed if e["status"] == "completed"]
    assert any(_overlapping(e, other) for e in together for other in ran if other is not e)
    # never more than two at once: at each start, at most two runs are under way
    for e in ran:
        start = _at(e["started_at"])
        under_way = [r for r in ran if _at(r["started_at"]) <= start < _at(r["completed_at"])]
        assert len(under_way) <= 2, under_way
