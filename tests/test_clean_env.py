"""Scripts start with a clean environment: none of the service's variables (its secrets
among them), only PATH, HOME, LANG, LC_*, TZ, the run's ids and the job's own `env`,
whose values are encrypted at rest and never answered or logged.

Run against a real `cronwell serve` child process whose environment holds real-looking
secrets, with a bash and a python script that print their whole environment.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from engine.model import JobKind
from runners.environment import child_environment
from runners.scripts import run_script
from tests.api_support import ServeProcess, finished_execution, write_script

ADMIN_KEY = "cw_admin-key-for-the-env-test-0123456789abcdef"
SERVICE_SECRETS = {
    "CRONWELL_SECRET_KEY": Fernet.generate_key().decode(),
    "CRONWELL_API_KEYS": ADMIN_KEY,
    "CRONWELL_ORACLE_PASSWORD": "oracle-Pa55word-do-not-leak",
    "CRONWELL_SMTP_PASSWORD": "smtp-Pa55word-do-not-leak",
    "MONGO_URI": "mongodb://root:mongo-Pa55word-do-not-leak@db.internal:27017",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "LC_TIME": "C",
    "TZ": "Europe/Berlin",
}
JOB_ENV = {"MY_TOKEN": "job-token-Zq8Jt1", "GREETING": "hello world"}
BASH_ENV = "#!/bin/bash\nenv\n"
PYTHON_ENV = (
    "import os\n\n"
    "def main(*args):\n"
    "    for name, value in sorted(os.environ.items()):\n"
    "        print(f'{name}={value}')\n"
    "    return 'ok'\n"
)


def variables(output: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in output.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.isidentifier():
            found[name] = value
    return found


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("clean_env")
    scripts = tmp / "scripts"
    scripts.mkdir()
    write_script(scripts, "env.sh", BASH_ENV)
    write_script(scripts, "env.py", PYTHON_ENV, executable=False)
    env = {
        **SERVICE_SECRETS,
        "CRONWELL_STORE": f"sqlite:///{tmp / 'cronwell.db'}",
        "CRONWELL_DATA_DIR": str(tmp / "data"),
        "CRONWELL_SCRIPT_ROOTS": str(scripts),
    }
    proc = ServeProcess([], tmp / "serve.log", env=env, cwd=tmp).wait_healthy()
    try:
        yield proc, scripts, tmp
    finally:
        proc.terminate()


def _call(proc: ServeProcess, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, proc.url + path, json=body, headers={"X-API-Key": ADMIN_KEY}, timeout=10
    )


@pytest.mark.parametrize(("job_type", "name"), [("bash", "env.sh"), ("python", "env.py")])
def test_a_script_sees_its_own_env_and_none_of_the_services(
    service: Any, job_type: str, name: str
) -> None:
    proc, scripts, tmp = service
    job_id = f"env_{job_type}"
    scheduled = _call(
        proc,
        "POST",
        "/api/schedule-job",
        {
            "job_id": job_id,
            "job_type": job_type,
            "script_path": str(scripts / name),
            "run_date": "2099-01-01T00:00:00",
            "env": JOB_ENV,
        },
    )
    assert scheduled.status_code == 200, scheduled.text
    for value in JOB_ENV.values():
        assert value not in scheduled.text
    shown = _call(proc, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    assert shown["env"] == ["GREETING", "MY_TOKEN"]  # names only
    assert _call(proc, "POST", f"/api/scheduler/jobs/{job_id}/run").status_code == 200
    execution = finished_execution_with_key(proc, job_id)
    assert execution["status"] == "completed", execution
    seen = variables(execution["output"])
    assert seen["MY_TOKEN"] == JOB_ENV["MY_TOKEN"] and seen["GREETING"] == "hello world"
    assert seen["CRONWELL_JOB_ID"] == job_id
    assert seen["CRONWELL_EXECUTION_ID"] == execution["_id"]
    assert "CRONWELL_SCHEDULED_FOR" in seen
    assert seen["LC_TIME"] == "C" and seen["TZ"] == "Europe/Berlin" and "PATH" in seen
    for secret_name, secret in SERVICE_SECRETS.items():
        if secret_name not in ("LC_TIME", "TZ"):
            assert secret_name not in seen
            assert secret not in execution["output"]
    assert "PYTHONPATH" not in seen  # the service's own, set by the test harness
    allowed = {"PATH", "HOME", "LANG", "TZ", "PWD", "SHLVL", "_", "OLDPWD"}
    extra = {n for n in seen if n not in allowed and not n.startswith("LC_")}
    assert extra <= {
        "MY_TOKEN",
        "GREETING",
        "CRONWELL_JOB_ID",
        "CRONWELL_EXECUTION_ID",
        "CRONWELL_SCHEDULED_FOR",
    }, extra
    # at rest: encrypted in the store; never in the service's log
    with sqlite3.connect(tmp / "cronwell.db") as db:
        stored = " ".join(row[0] for row in db.execute("SELECT doc FROM cw_jobs"))
    assert "MY_TOKEN" in stored and JOB_ENV["MY_TOKEN"] not in stored
    assert JOB_ENV["MY_TOKEN"] not in proc.output()


def finished_execution_with_key(proc: ServeProcess, job_id: str) -> dict[str, Any]:
    return finished_execution(proc.url, job_id, headers={"X-API-Key": ADMIN_KEY})


def test_the_custom_script_job_class_runs_with_the_jobs_env(service: Any) -> None:
    proc, _, _ = service
    users = _call(proc, "POST", "/api/users/", {"name": "E", "email": "e@example.com"})
    created = _call(
        proc,
        "POST",
        "/api/scheduler/jobs",
        {
            "user_id": users.json()["user_id"],
            "job_class_string": "jobs.custom.CustomScriptJob",
            "name": "env via the class",
            "minute": "0",
            "hour": "0",
            "pub_args": ["env.sh"],
            "env": {"ONLY_MINE": "class-job-value"},
        },
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    assert "class-job-value" not in created.text
    assert _call(proc, "POST", f"/api/scheduler/jobs/{job_id}/run").status_code == 200
    execution = finished_execution_with_key(proc, job_id)
    assert execution["status"] == "completed", execution
    seen = variables(execution["output"])
    assert seen["ONLY_MINE"] == "class-job-value" and seen["CRONWELL_JOB_ID"] == job_id
    for secret_name in ("CRONWELL_SECRET_KEY", "CRONWELL_API_KEYS", "MONGO_URI"):
        assert secret_name not in seen
    # an update replaces the set: a name left out is gone
    updated = _call(proc, "PUT", f"/api/scheduler/jobs/{job_id}", {"env": {"OTHER": "x"}})
    assert updated.status_code == 200 and updated.json()["data"]["env"] == ["OTHER"]


@pytest.mark.parametrize(
    "env",
    [
        ["not", "an", "object"],
        {"1BAD": "x"},
        {"CRONWELL_JOB_ID": "spoofed"},
        {"OK": 5},
        {"OK": "nul\x00byte"},
    ],
)
def test_a_bad_env_is_refused_on_both_surfaces(service: Any, env: Any) -> None:
    proc, scripts, _ = service
    scripts_answer = _call(
        proc,
        "POST",
        "/api/schedule-job",
        {
            "job_id": "bad_env",
            "job_type": "bash",
            "script_path": str(scripts / "env.sh"),
            "run_date": "2099-01-01T00:00:00",
            "env": env,
        },
    )
    assert scripts_answer.status_code == 400 and "env" in scripts_answer.json()["error"]
    jobs = _call(proc, "GET", "/api/scheduler/jobs").json()["data"]
    update = _call(proc, "PUT", f"/api/scheduler/jobs/{jobs[0]['_id']}", {"env": env})
    assert update.status_code == 422 and "env" in update.json()["detail"]


def test_child_environment_is_the_allow_list_and_the_runs_own() -> None:
    service = {
        "PATH": "/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TZ": "UTC",
        "SECRET": "x",
        "PYTHONPATH": "/src",
        "CRONWELL_API_KEYS": "k",
    }
    assert child_environment({"MINE": "1"}, service) == {
        "PATH": "/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TZ": "UTC",
        "MINE": "1",
    }
    assert child_environment(None, {})["PATH"]


def test_run_script_without_env_still_hides_the_service_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRONWELL_SECRET_KEY", "leak-me-not")
    script = write_script(tmp_path, "env.sh", BASH_ENV)
    outcome = run_script(
        JobKind.BASH,
        script,
        [],
        roots=(tmp_path,),
        timeout=10,
        output_cap=65536,
        cancel=threading.Event(),
    )
    assert outcome.exit_code == 0 and "leak-me-not" not in outcome.output
