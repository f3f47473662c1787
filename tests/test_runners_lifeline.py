"""Child processes do not outlive the service unnoticed (runners/lifeline.py and
runners/watchdog.py), with real processes: a stand-in service (a Python process
running a script the way a worker does, from a thread) is killed with SIGKILL while
the script sleeps; a watchdog of the test's own is killed, restarted and closed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runners import lifeline
from runners.watchdog import Watchdog
from runners.watchdog_helper import read_watched
from tests.runners_support import is_gone, read_pid, wait_gone, write_script

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
    """A script that records its own pid, its child's (in its process group) and its
    runaway's (a session of its own), then sleeps through a kill."""
    return write_script(
        tmp_path,
        "sleeper.sh",
        "#!/bin/bash\n"
        f"echo $$ > {tmp_path}/script.pid\n"
        "sleep 30 &\n"
        f"echo $! > {tmp_path}/child.pid\n"
        "setsid sleep 30 &\n"
        f"echo $! > {tmp_path}/runaway.pid\n"
        "wait\n"
        f"echo done > {tmp_path}/finished\n",
    )


def _killed_service(tmp_path: Path, execution_id: str) -> tuple[int, int, int]:
    """Start the stand-in service, let the script start, SIGKILL the service."""
    script = _script(tmp_path)
    service = subprocess.Popen([sys.executable, "-c", SERVICE, str(script), execution_id])
    try:
        pids = tuple(
            read_pid(tmp_path / f"{name}.pid", within=10) for name in ("script", "child", "runaway")
        )
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait(10)
    return pids[0], pids[1], pids[2]


def test_a_script_and_its_group_die_with_the_service_and_leftovers_die_on_restart(
    tmp_path: Path,
) -> None:
    script_pid, child_pid, runaway_pid = _killed_service(tmp_path, "exec-lifeline-1")
    try:
        # the watchdog kills the script's whole group ...
        assert wait_gone(script_pid), "the script outlived the service"
        assert wait_gone(child_pid), "the script's child outlived the service"
        time.sleep(0.2)
        assert not (tmp_path / "finished").exists()
        # ... but not what left the group
        assert not is_gone(runaway_pid)
        assert lifeline.kill_leftovers({"some-other-execution"}) == 0
        assert not is_gone(runaway_pid)
        # which the next start finds by the execution it belongs to
        assert lifeline.kill_leftovers({"exec-lifeline-1"}) == 1
        assert wait_gone(runaway_pid)
    finally:
        for pid in (script_pid, child_pid, runaway_pid):
            if not is_gone(pid):
                subprocess.run(["kill", "-9", str(pid)], check=False)


def _sleeping_group() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "30"], process_group=0)


def test_a_dead_watchdog_is_replaced_and_told_every_group_still_watched() -> None:
    watchdog = Watchdog()
    first, second, done = _sleeping_group(), _sleeping_group(), _sleeping_group()
    try:
        watchdog.watch(first.pid)
        watchdog.watch(done.pid)
        watchdog.forget(done.pid)
        dead = watchdog.pid
        assert dead is not None
        os.kill(dead, signal.SIGKILL)
        assert wait_gone(dead)
        watchdog.watch(second.pid)  # finds the pipe broken: a new watchdog, told both
        assert watchdog.pid not in (None, dead)
        watchdog.close()  # as the service's death would
        assert first.wait(5) == -signal.SIGKILL
        assert second.wait(5) == -signal.SIGKILL
        assert done.poll() is None, "a forgotten group was killed"
    finally:
        watchdog.close()
        for process in (first, second, done):
            process.kill()
            process.wait()


def test_the_watchdog_reads_its_pipe_line_by_line() -> None:
    lines = [b"+10\n", b"+11\n", b"-10\n", b"+12\n", b"junk\n", b"+\n", b"-99\n"]
    assert read_watched(lines) == {11, 12}


def test_without_a_watchdog_children_still_start(tmp_path: Path) -> None:
    watchdog = Watchdog([str(tmp_path / "no-such-program")])
    assert not watchdog.start()
    watchdog.watch(os.getpid())  # nothing to tell: no error, logged once
    watchdog.forget(os.getpid())
    assert watchdog.pid is None
