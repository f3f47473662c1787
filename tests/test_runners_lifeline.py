"""Child processes do not outlive the service unnoticed (runners/lifeline.py), with
real processes: a stand-in service (a Python process running a script the way a
worker does, from a thread) is killed with SIGKILL while the script sleeps."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runners import lifeline
from tests.runners_support import is_gone, read_pid, wait_gone, write_script

pytestmark = pytest.mark.skipif(
    lifeline._setpriv() is None, reason="setpriv (util-linux) is not installed"
)

#: runs the script from a thread, as a pool worker does, then waits to be killed
SERVICE = """
import sys, threading
from runners.process import run_process
threading.Thread(
    target=run_process,
    args=([sys.argv[1]],),
    kwargs=dict(timeout=None, output_cap=1024, cancel=threading.Event(), execution_id=sys.argv[2]),
).start()
threading.Event().wait()
"""


def _script(tmp_path: Path) -> Path:
    """A script that records its own pid and its child's, then sleeps through a kill."""
    return write_script(
        tmp_path,
        "sleeper.sh",
        "#!/bin/bash\n"
        f"echo $$ > {tmp_path}/script.pid\n"
        "sleep 30 &\n"
        f"echo $! > {tmp_path}/child.pid\n"
        "wait\n"
        f"echo done > {tmp_path}/finished\n",
    )


def _killed_service(tmp_path: Path, execution_id: str) -> tuple[int, int]:
    """Start the stand-in service, let the script start, SIGKILL the service."""
    script = _script(tmp_path)
    service = subprocess.Popen([sys.executable, "-c", SERVICE, str(script), execution_id])
    try:
        script_pid = read_pid(tmp_path / "script.pid", within=10)
        child_pid = read_pid(tmp_path / "child.pid", within=10)
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait(10)
    return script_pid, child_pid


def test_a_script_dies_with_the_service_and_its_leftovers_are_killed_on_restart(
    tmp_path: Path,
) -> None:
    script_pid, child_pid = _killed_service(tmp_path, "exec-lifeline-1")
    try:
        assert wait_gone(script_pid), "the script outlived the service"
        time.sleep(0.2)
        assert not (tmp_path / "finished").exists()
        # the script's own child is not reached by the parent-death signal ...
        assert not is_gone(child_pid)
        assert lifeline.kill_leftovers({"some-other-execution"}) == 0
        assert not is_gone(child_pid)
        # ... but the next start finds it by the execution it belongs to
        assert lifeline.kill_leftovers({"exec-lifeline-1"}) == 1
        assert wait_gone(child_pid)
    finally:
        for pid in (script_pid, child_pid):
            if not is_gone(pid):
                subprocess.run(["kill", "-9", str(pid)], check=False)


def test_the_wrapper_keeps_the_errors_of_a_direct_exec(tmp_path: Path) -> None:
    assert lifeline.exec_failure(
        127, "", "setpriv: failed to execute /x: No such file\n", "/x"
    ) == ("No such file")
    # a program's own exit 127 with other output is the program's result
    assert lifeline.exec_failure(127, "", "bash: y: command not found\n", "/x") is None
    assert lifeline.exec_failure(127, "out", "setpriv: failed to execute /x: gone\n", "/x") is None
    assert lifeline.exec_failure(0, "", "setpriv: failed to execute /x: gone\n", "/x") is None
    elf = Path(sys.executable).resolve()
    assert lifeline.wrapped([str(elf)])[-1] == str(elf)
    with pytest.raises(OSError, match="Exec format error"):
        lifeline.wrapped([str(write_script(tmp_path, "plain.sh", "echo hi\n"))])
