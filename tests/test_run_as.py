"""Scripts cannot read the service's files: data files are created mode 0600, and with
CRONWELL_RUN_AS scripts run as another OS user (the service runs as root here, so this
is done for real: a test user is created with useradd when missing)."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from runners import identity
from runners.identity import describe_identity, parse_run_as
from stores.sqlite import SqliteStore
from tests.api_support import CRONWELL, ROOT, ServeProcess, finished_execution, write_script

RUN_AS_USER = "cronwell-script-test"
ADMIN_KEY = "cw_run-as-test-admin-key-0123456789abcdefghij"
PROBE = """#!/bin/bash
echo "user=$(id -un)"
for file in "$@"; do
  if cat "$file" > /dev/null 2>&1; then echo "READ $file"; else echo "DENIED $file"; fi
done
"""
PYTHON_PROBE = """import getpass

def main(*paths):
    print(f"user={getpass.getuser()}")
    for path in paths:
        try:
            open(path, "rb").close()
            print(f"READ {path}")
        except PermissionError:
            print(f"DENIED {path}")
"""
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching users needs the tests to run as root"
)


def test_the_database_key_and_backup_folder_are_private(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data" / "cronwell.db")
    store.open()
    try:
        store.list_jobs()
    finally:
        store.close()
    assert stat.S_IMODE((tmp_path / "data" / "cronwell.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    loose = tmp_path / "old.db"
    loose.write_bytes(b"")
    loose.chmod(0o644)
    SqliteStore(loose).open()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600  # an existing one is tightened


def test_the_check_says_plainly_when_scripts_share_the_services_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(identity, "can_switch_users", lambda: False)
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert describe_identity("").startswith(f"scripts share the service's user {me}")
    assert describe_identity("root").startswith(f"scripts share the service's user {me}")
    assert "needs the service to run as root" in describe_identity("root")
    monkeypatch.setattr(identity, "can_switch_users", lambda: True)
    said = describe_identity("root")  # and which interpreter (tested as root below)
    assert said.startswith("scripts run as root (uid 0, gid 0); python scripts "), said


def test_an_unknown_run_as_user_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such user"):
        parse_run_as("no-such-user-here")
    with pytest.raises(ValueError, match="no such group"):
        parse_run_as("root:no-such-group-here")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONWELL_")}
    done = subprocess.run(  # noqa: PLW1510
        [*CRONWELL, "serve", "--check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PYTHONPATH": str(ROOT), "CRONWELL_RUN_AS": "no-such-user-here"},
    )
    assert done.returncode == 1 and "no such user" in done.stderr and done.stdout == ""


@pytest.fixture(scope="module")
def run_as_user() -> str:
    if os.geteuid() != 0:
        pytest.skip("switching users needs the tests to run as root")
    try:
        pwd.getpwnam(RUN_AS_USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("useradd is not available to create the test user")
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                RUN_AS_USER,
            ],
            check=True,
            capture_output=True,
        )
    return RUN_AS_USER


@pytest.fixture(scope="module")
def service(run_as_user: str) -> Iterator[tuple[ServeProcess, Path, Path]]:
    # a world-traversable base, so only the files' own modes keep the script out
    base = Path(tempfile.mkdtemp(prefix="cronwell-run-as-", dir="/tmp"))
    try:
        base.chmod(0o755)
        scripts, data = base / "scripts", base / "data"
        scripts.mkdir(mode=0o755)
        data.mkdir(mode=0o755)
        scripts.chmod(0o755)
        data.chmod(0o755)
        write_script(scripts, "probe.sh", PROBE)
        write_script(scripts, "probe.py", PYTHON_PROBE, executable=False)
        (scripts / "probe.py").chmod(0o644)
        env = {
            "CRONWELL_STORE": f"sqlite:///{data / 'cronwell.db'}",
            "CRONWELL_DATA_DIR": str(data),
            "CRONWELL_SCRIPT_ROOTS": str(scripts),
            "CRONWELL_API_KEYS": ADMIN_KEY,
            "CRONWELL_RUN_AS": run_as_user,
        }
        proc = ServeProcess([], base / "serve.log", env=env, cwd=base).wait_healthy()
        try:
            yield proc, scripts, data
        finally:
            proc.terminate()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(proc: ServeProcess, job_id: str, job_type: str, script: Path, args: list[str]) -> Any:
    headers = {"X-API-Key": ADMIN_KEY}
    body = {
        "job_id": job_id,
        "job_type": job_type,
        "script_path": str(script),
        "run_date": "2099-01-01T00:00:00",
        "args": args,
    }
    scheduled = requests.post(
        f"{proc.url}/api/schedule-job", json=body, headers=headers, timeout=10
    )
    assert scheduled.status_code == 200, scheduled.text
    run = requests.post(f"{proc.url}/api/scheduler/jobs/{job_id}/run", headers=headers, timeout=10)
    assert run.status_code == 200, run.text
    return finished_execution(proc.url, job_id, headers=headers)


@needs_root
def test_a_script_running_as_another_user_cannot_open_the_database_or_the_key(
    service: tuple[ServeProcess, Path, Path], run_as_user: str
) -> None:
    proc, scripts, data = service
    files = [data / "cronwell.db", data / "secret.key"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    public = scripts / "probe.sh"  # a file the user may read: the probe itself works
    execution = _run(proc, "probe_bash", "bash", public, [*map(str, files), str(public)])
    assert execution["status"] == "completed", execution
    output = execution["output"]
    assert f"user={run_as_user}" in output
    for path in files:
        assert f"DENIED {path}" in output
    assert f"READ {public}" in output
    assert f"scripts run as {run_as_user}" in proc.output()


@needs_root
def test_a_python_script_runs_as_the_other_user_too(
    service: tuple[ServeProcess, Path, Path], run_as_user: str
) -> None:
    """No skip: when the other user cannot start the service's own interpreter (a pyenv
    under a 0700 /root, as on CI), the service chose one it can at start and said so."""
    proc, scripts, data = service
    files = [str(data / "cronwell.db"), str(data / "secret.key")]
    execution = _run(proc, "probe_python", "python", scripts / "probe.py", files)
    assert execution["status"] == "completed", (execution, proc.output())
    assert f"user={run_as_user}" in execution["output"]
    for path in files:
        assert f"DENIED {path}" in execution["output"]
    said = [line for line in proc.output().splitlines() if f"scripts run as {run_as_user}" in line]
    assert said and "python scripts run with " in said[0], proc.output()
    assert execution["return_value"] is None  # main() returned nothing, through the host


def _unreachable_python(base: Path) -> Path:
    """This interpreter behind a folder only root may enter, as a pyenv under /root is."""
    closed = base / "closed"
    closed.mkdir(mode=0o700)
    link = closed / "python3"
    link.symlink_to(sys.executable)
    return link


@needs_root
def test_an_interpreter_the_user_cannot_start_is_replaced_by_one_it_can(
    run_as_user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runners import interpreter

    user = parse_run_as(run_as_user)
    ids = (user.uid, user.gid, user.groups)
    tmp_path.chmod(0o755)
    unreachable = _unreachable_python(tmp_path)
    assert not interpreter.runnable_by(str(unreachable), *ids)  # the probe really starts it
    monkeypatch.setattr(interpreter.sys, "executable", str(unreachable))
    system = [p for p in interpreter.SYSTEM_PYTHONS if interpreter.runnable_by(p, *ids)]
    assert system, (
        f"{run_as_user} can start none of {interpreter.SYSTEM_PYTHONS}: CI must have Debian's "
        "python3 (.ci/run installs it)"
    )
    chosen = interpreter.python_for(run_as_user, *ids)
    assert chosen.path == system[0] and chosen.usable
    assert f"{run_as_user} cannot run the service's interpreter {unreachable}" in chosen.why
    monkeypatch.setattr(interpreter, "SYSTEM_PYTHONS", ())
    none = interpreter.python_for(run_as_user, *ids)
    assert not none.usable and none.why.startswith("python scripts will fail")


@needs_root
def test_a_configured_interpreter_the_user_cannot_start_is_a_configuration_error(
    run_as_user: str, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)
    unreachable = _unreachable_python(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONWELL_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CRONWELL_RUN_AS=run_as_user,
        CRONWELL_DATA_DIR=str(tmp_path / "data"),
        CRONWELL_STORE=f"sqlite:///{tmp_path / 'cronwell.db'}",
    )
    check = [*CRONWELL, "serve", "--check"]
    refused = subprocess.run(  # noqa: PLW1510
        check,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "CRONWELL_RUN_AS_PYTHON": str(unreachable)},
    )
    assert refused.returncode == 1, refused
    assert f"CRONWELL_RUN_AS_PYTHON={unreachable} cannot be run by {run_as_user}" in refused.stderr
    chosen = subprocess.run(  # noqa: PLW1510
        check, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
    )
    assert chosen.returncode == 0, chosen
    assert f"scripts run as {run_as_user}" in chosen.stdout
    assert "python scripts run with " in chosen.stdout
