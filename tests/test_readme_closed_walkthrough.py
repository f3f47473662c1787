"""The README's closed-mode walkthrough, run verbatim as a new user would, after `make
run` in a fresh copy of the repository (the same harness as the open-mode walkthrough):
the first admin key from `cronwell keys create`, a user and their key, what that user
can and cannot see, the audit trail, and a revoked key."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from tests.test_readme_walkthrough import (
    README_BASE,
    MakeRun,
    cli_env,
    run_bash,
    service,
    walkthrough_blocks,
)

__all__ = ["service"]  # the fixture: a fresh copy under `make run`

HEADING = "## Closed-mode walkthrough"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_readme_closed_mode_walkthrough(service: MakeRun) -> None:
    copy, base = service.copy, service.url
    blocks = walkthrough_blocks((copy / "README.md").read_text(), HEADING)
    assert len(blocks) == 5
    script = "\n".join(blocks)
    assert script.count(README_BASE) == 1
    script = script.replace(README_BASE, f"BASE={base}", 1)
    # echo the ids the walkthrough made, so the checks below can use them
    script += '\necho "IDS $BOB_ID $BOB_JOB $ROOT_ID"\n'
    out = run_bash(script, copy, timeout=90, store=service.store)
    bob_id, bob_job, root_id = out.strip().splitlines()[-1].split()[1:]

    assert '{"error": "Missing API key' in out  # closed as soon as the key existed
    assert '"status": "healthy"' in out
    assert '"prefix": "cw_' in out and '"api_key"' not in out
    # Bob's listings: his job, himself
    assert f'"_id": "{bob_job}"' in out and '"env": [\n' in out and '"API_TOKEN"' in out
    assert "only-bob-knows" not in out
    assert f'{{"detail": "User not found: {root_id}"}}' in out
    assert out.count('{"detail": "Only an admin may change a role"}') == 1
    assert '{"detail": "A user may schedule a job only for themself' in out
    assert "jobs.backup.DataBackupJob works on every user's data" in out
    assert '{"detail": "Only an admin may read the audit trail"}' in out
    assert '"message": "API key revoked successfully"' in out
    assert out.rstrip().splitlines()[-2] == '{"detail": "Invalid or revoked API key"}'

    # the same facts through the API, with the store's own view
    assert requests.get(f"{base}/api/jobs", timeout=5).status_code == 401
    keys = subprocess.run(
        [str(copy / ".venv" / "bin" / "cronwell"), "keys", "create", "--email", "root@example.com"],
        cwd=copy,
        env=cli_env(service.store),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    admin = {"X-API-Key": keys}
    trail = requests.get(f"{base}/api/audit", params={"user_id": bob_id}, headers=admin, timeout=5)
    statuses = [e["status_code"] for e in trail.json()["data"]]
    assert sorted(statuses) == [200, 403, 403, 403]  # his job, then role, move, backup class
    jobs = requests.get(f"{base}/api/scheduler/jobs", headers=admin, timeout=5).json()["data"]
    (bobs,) = [j for j in jobs if j["_id"] == bob_job]
    assert bobs["user_id"] == bob_id and bobs["env"] == ["API_TOKEN"]
    assert json.dumps(jobs).count("only-bob-knows") == 0
    assert service.stop() == 0
    assert "Traceback" not in service.output()
