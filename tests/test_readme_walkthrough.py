"""The README's five-minute walkthrough, run as a new user would.

The repository's tracked files (`git ls-files`) are copied into a temp folder; there
`make run PORT=<free port>` starts the service; once `/api/health` answers, the shell
blocks under the walkthrough heading are taken from README.md, run in order as one
`bash -e` script (this harness runs the README's own commands; the product never
starts a shell), and their results are checked through the API. The server is stopped
with SIGTERM and must exit cleanly.

A fresh `make run` installs every dependency from PyPI, which takes minutes. By default
the copy therefore gets a light `.venv`: a venv without pip whose site-packages points
(one `.pth` line) at the packages of the venv running this test, plus pip's own entry
script; `make run` then runs its real install step (`pip install -e .` of the copy)
offline (`PIP_NO_INDEX`, no build isolation) in a few seconds. Set
`CRONWELL_WALKTHROUGH_FRESH_VENV=1` to let `make run` build `.venv` from scratch as on a
new machine (network needed).

The README's `DELAY=10` is set to 3 here and its `BASE` gets the free port. It runs
twice: `make run` as the README has it (SQLite under var/), and `make run STORE=...`
with DB_NAME on a database of the session's real MongoDB server.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.api_support import ROOT, free_port, wait_for
from tests.mongo_server import SERVICE_STORES, ServiceStore, store_for

FRESH = os.environ.get("CRONWELL_WALKTHROUGH_FRESH_VENV") == "1"
HEADING = "## Five-minute walkthrough"
README_BASE = "BASE=http://127.0.0.1:5000"
README_DELAY = "DELAY=10"
TEST_DELAY = 3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900 if FRESH else 120)]


def walkthrough_blocks(readme: str, heading: str = HEADING) -> list[str]:
    """The ```sh blocks between the walkthrough heading and the next `## ` heading."""
    start = readme.index(heading + "\n")
    end = readme.find("\n## ", start + len(heading))
    section = readme[start : end if end != -1 else len(readme)]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


def walkthrough_script(readme: str, port: int) -> str:
    blocks = walkthrough_blocks(readme)
    assert len(blocks) >= 5, "the walkthrough's shell blocks were not found"
    script = "\n".join(blocks)
    for line in (README_BASE, README_DELAY):
        assert len(re.findall(rf"^{re.escape(line)}\b", script, flags=re.MULTILINE)) == 1, line
    script = script.replace(README_BASE, f"BASE=http://127.0.0.1:{port}", 1)
    return script.replace(README_DELAY, f"DELAY={TEST_DELAY}", 1)


def copy_tracked_files(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # tracked but deleted in the working tree: a user lacks it too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def light_venv(copy: Path) -> dict[str, str]:
    """A `.venv` in the copy reusing this venv's packages; the env `make` needs then."""
    venv = copy / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "cronwell-shared-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = venv / "bin" / "pip"  # what pip's own installer writes as its entry script
    pip.write_text(
        f"#!{python}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"
    )
    pip.chmod(0o755)
    return {
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


class MakeRun:
    """`make run PORT=... [STORE=...]` in the copy, in its own session, output to a file."""

    def __init__(
        self, copy: Path, port: int, extra_env: dict[str, str], store: ServiceStore
    ) -> None:
        self.copy = copy
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = copy / "make-run.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CRONWELL_", "PIP_", "VIRTUAL_ENV", "PYTHON"))
            and k not in {"MONGO_URI", "DB_NAME"}
        }
        env.update(extra_env)
        env.update(store.env)  # DB_NAME for MongoDB
        self.store = store
        make = ["make", "run", f"PORT={port}"]
        if store.mongo is not None:
            make.append(f"STORE={store.url}")
        with open(self.log, "wb") as sink:
            self.proc = subprocess.Popen(
                make,
                cwd=copy,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, timeout: float) -> None:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"make run exited early:\n{self.output()}")
            try:
                return requests.get(f"{self.url}/api/health", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(healthy, timeout, "make run to answer /api/health", interval=0.2)

    def server(self) -> psutil.Process:
        (found,) = [
            p
            for p in psutil.Process(self.proc.pid).children(recursive=True)
            if "serve" in p.cmdline()
        ]
        return found

    def stop(self) -> int:
        """SIGTERM to the cronwell server, as a service manager sends; make's status."""
        self.server().send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture(params=SERVICE_STORES)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeRun]:
    copy = tmp_path / "cronwell"
    copy.mkdir()
    copy_tracked_files(copy)
    extra_env = {} if FRESH else light_venv(copy)
    with store_for(request, tmp_path) as store:
        run = MakeRun(copy, free_port(), extra_env, store)
        try:
            run.wait_healthy(600 if FRESH else 60)
            yield run
        finally:
            run.kill()


def cli_env(store: ServiceStore) -> dict[str, str] | None:
    """The environment that points `cronwell` commands at the store the service runs on
    (None: the default, the SQLite file under var/ that `make run` uses)."""
    if store.mongo is None:
        return None
    return {**os.environ, "CRONWELL_STORE": store.url, **store.env}


def run_bash(script: str, cwd: Path, timeout: float, store: ServiceStore | None = None) -> str:
    """Run the README's commands as one `bash -e` script; its stdout (it must succeed).
    With `store`, the CLI commands in it work on the store the service runs on (as a
    reader who started `make run STORE=...` would point them there too)."""
    env = cli_env(store) if store is not None else None
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def executions(base: str, **params: str) -> list[dict[str, Any]]:
    response = requests.get(f"{base}/api/scheduler/executions", params=params, timeout=5)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_readme_walkthrough_as_a_new_user(service: MakeRun) -> None:
    copy, base = service.copy, service.url
    # what the README says `make run` creates, and the copy's own code installed in it
    assert (copy / "var" / "scripts").is_dir()
    assert (copy / "var" / "cronwell.db").is_file() is (service.store.mongo is None)
    origin = subprocess.run(
        [str(copy / ".venv" / "bin" / "python"), "-c", "import api; print(api.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(origin) == copy / "api" / "__init__.py"
    script = walkthrough_script((copy / "README.md").read_text(), service.port)
    started = time.monotonic()
    out = run_bash(script, copy, timeout=60)
    assert time.monotonic() - started < 30

    assert '"scheduler_running": true' in out
    assert '"job_id": "hello_bash"' in out and '"job_id": "report_py"' in out  # listed
    (bash_run,) = executions(base, job_id="hello_bash")
    assert bash_run["status"] == "completed", bash_run
    assert bash_run["output"].strip() == "hello from bash, args: one two"
    assert bash_run["exit_code"] == 0
    (python_run,) = executions(base, job_id="report_py")
    assert python_run["status"] == "completed", python_run
    assert python_run["output"].strip() == "report for ('sales',)"
    assert python_run["return_value"] == {"rows": 42, "args": ["sales"]}
    assert f'"_id": "{bash_run["_id"]}"' in out  # the walkthrough printed them

    (echo_run,) = [
        e
        for e in executions(base)
        if e["job_class_string"] == "jobs.echo.EchoJob" and e["reason"] == "manual"
    ]
    assert echo_run["status"] == "completed" and echo_run["reason"] == "manual"
    assert "Args: ['hello']" in echo_run["output"]
    assert "Kwargs: {'from': 'readme'}" in echo_run["output"]
    assert echo_run["output"] in out.replace("\\n", "\n")  # the walkthrough printed it

    assert '"message": "Next 3 runs of job' in out and '"occurrence": ' in out
    assert "is disabled; enable it first" in out

    # the failing every-30-seconds check: notified by webhook, chained the clean-up
    (check_run,) = [
        e for e in executions(base) if e["job_class_string"] == "jobs.custom.CustomScriptJob"
    ]
    assert check_run["status"] == "failed", check_run
    (notice,) = check_run["notifications"]
    assert notice["outcome"] == "delivered (HTTP 204)" and notice["attempt"] == 1
    (chained,) = check_run["chained"]
    (cleanup_run,) = executions(base, job_id=chained["job_id"])
    assert cleanup_run["_id"] == chained["execution_id"]
    assert cleanup_run["reason"] == "chain" and cleanup_run["triggered_by"] == check_run["_id"]
    assert cleanup_run["status"] == "completed"
    hooks = (copy / "var" / "hooks.log").read_text()
    assert hooks.startswith("sha256=") and '"event": "execution.failed"' in hooks
    assert check_run["_id"] in hooks and '"triggered_by"' in out

    assert "Job paused successfully" in out and '"next_run_time": null' in out
    assert f"Job {echo_run['job_id']} resumed successfully" in out
    assert "Job deleted successfully" in out and "Job hello_bash removed successfully" in out
    remaining = requests.get(f"{base}/api/jobs", timeout=5).json()
    assert [j["job_id"] for j in remaining["jobs"]] == ["report_py"]
    if service.store.mongo is not None:  # and that is where it was kept
        db = service.store.mongo.client[service.store.db_name]
        assert [d["_id"] for d in db["scheduler_jobs"].find()] == ["report_py"]
        listed = requests.get(
            f"{base}/api/scheduler/executions", params={"limit": 1}, timeout=5
        ).json()["total"]
        assert db["scheduler_executions"].count_documents({}) == listed >= 3

    assert service.stop() == 0  # make exits 0 only when cronwell did
    log = service.output()
    assert "Traceback" not in log
    assert "engine stopped" in log
