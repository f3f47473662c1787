"""Scripts cannot read the service's files: data files are created mode 0600, and with
CRONWELL_RUN_AS scripts run as another OS user (the service runs as root here, so this
is done for real: a test user is created with useradd when missing)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
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
from tests.runners_support import wait_gone

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


SERVICE_TEST_USER = "cronwell-service-test"
SWITCHING_CAPS = "+setuid,+setgid,+chown,+kill"
#: what the service does at start and for each run, as an unprivileged user holding the
#: four capabilities (the image's entrypoint starts it so): the real runner code
AS_SERVICE = """
import json, sys, threading
from pathlib import Path
from engine.model import JobKind
from runners.capabilities import capability_sets, keep_from_children
from runners.identity import script_identity
from runners.scripts import run_script
from runners.watchdog import WATCHDOG

WATCHDOG.start()  # before the capabilities are cleared, as start-up does
keep_from_children()
run_as = script_identity(sys.argv[1])
assert run_as is not None, "this process cannot switch users"
probe, sleeper, secret = (Path(p) for p in sys.argv[2:5])
roots = [probe.parent]
def run(kind, script, args, timeout):
    return run_script(kind, script, args, roots=roots, timeout=timeout, output_cap=65536,
                      cancel=threading.Event(), run_as=run_as)
read = run(JobKind.BASH, probe, [str(secret)], 30)
slow = run(JobKind.BASH, sleeper, [], 0.5)
python = run(JobKind.PYTHON, probe.with_name("probe.py"), [str(secret)], 30)
print(json.dumps({"read": [str(read.status), read.output, read.error],
                  "slow": [str(slow.status), slow.output, slow.error],
                  "python": [str(python.status), python.output, python.error],
                  "python_with": run_as.python, "caps": capability_sets()}), flush=True)
# last, a script still running when the service is killed: the watchdog must stop it
import os, psutil, signal, time
threading.Thread(target=run, args=(JobKind.BASH, sleeper, [], 60), daemon=True).start()
while not (left := [c for c in psutil.Process().children() if c.uids().real == run_as.uid]):
    time.sleep(0.02)
print(left[0].pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def world_readable() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="cronwell-caps-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def service_user() -> str:
    if os.geteuid() != 0:
        pytest.skip("switching users needs the tests to run as root")
    try:
        pwd.getpwnam(SERVICE_TEST_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_TEST_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SERVICE_TEST_USER


@needs_root
def test_an_unprivileged_service_with_four_capabilities_runs_scripts_as_another_user(
    run_as_user: str, service_user: str, world_readable: Path
) -> None:
    """The image's design on this machine: the service is not root, holds only the
    capabilities switching users takes, passes none on, and its scripts, another user,
    cannot read its 0600 files. Debian's python3 runs it, with this tree and the venv's
    packages on its path, because the venv's own interpreter is under a 0700 /root."""
    python = "/usr/bin/python3"
    assert os.access(python, os.X_OK), f"{python} is missing: .ci/run installs Debian's python3"
    tmp_path = world_readable  # both users must reach it; only the files' modes keep out
    scripts = tmp_path / "scripts"
    scripts.mkdir(mode=0o755)
    probe = write_script(
        scripts,
        "caps.sh",
        '#!/bin/bash\necho "uid=$(id -u)"\ngrep -E "^Cap(Eff|Prm|Inh|Amb)" /proc/self/status\n'
        'if cat "$1" > /dev/null 2>&1; then echo "READ $1"; else echo "DENIED $1"; fi\n',
    )
    sleeper = write_script(scripts, "sleeper.sh", '#!/bin/bash\necho "napping $$"\nsleep 30\n')
    write_script(scripts, "probe.py", PYTHON_PROBE, executable=False).chmod(0o644)
    service = pwd.getpwnam(service_user)
    secret = tmp_path / "secret.key"
    secret.write_text("the service's own\n")
    secret.chmod(0o600)
    os.chown(secret, service.pw_uid, service.pw_gid)
    packages = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    done = subprocess.run(  # noqa: PLW1510
        [
            "setpriv",
            f"--reuid={service_user}",
            f"--regid={service_user}",
            "--init-groups",
            f"--inh-caps=-all,{SWITCHING_CAPS}",
            f"--ambient-caps=-all,{SWITCHING_CAPS}",
            f"--bounding-set=-all,{SWITCHING_CAPS}",
            "--",
            python,
            "-c",
            AS_SERVICE,
            run_as_user,
            str(probe),
            str(sleeper),
            str(secret),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{packages}", "LANG": "C.UTF-8"},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    *_, report, left = done.stdout.splitlines()
    assert wait_gone(int(left)), "another user's script outlived the service"
    seen = __import__("json").loads(report)
    assert seen["caps"]["Eff"] == 0xE1 and seen["caps"]["Amb"] == seen["caps"]["Inh"] == 0
    status, output, error = seen["read"]
    assert status == "completed", (output, error)
    uid = pwd.getpwnam(run_as_user).pw_uid
    assert f"uid={uid}" in output
    for capability_set in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert f"{capability_set}:\t0000000000000000" in output, output
    assert f"DENIED {secret}" in output
    status, output, error = seen["slow"]
    assert status == "timeout", (output, error)  # stopped: a signal to another user's group
    napper = int(output.split()[1])
    assert not Path(f"/proc/{napper}").exists() or "Z" in Path(f"/proc/{napper}/stat").read_text()
    status, output, error = seen["python"]
    assert status == "completed", (output, error)
    assert f"user={run_as_user}" in output and f"DENIED {secret}" in output
    assert seen["python_with"] == python
