"""run_process against real child processes: capture, exit codes, timeout, cancel,
group kill and the output cap."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from engine.model import Status
from runners.process import ProcessResult, run_process
from tests.runners_support import is_gone, read_pid, wait_gone, write_script

CAP = 64 * 1024


def run(
    argv: list[str],
    *,
    timeout: float | None = 5.0,
    cap: int = CAP,
    grace: float = 0.3,
    cancel: threading.Event | None = None,
    cwd: Path | None = None,
) -> ProcessResult:
    return run_process(
        argv,
        timeout=timeout,
        output_cap=cap,
        cancel=cancel or threading.Event(),
        cwd=cwd,
        grace=grace,
    )


def test_exit_zero_captures_stdout_and_stderr_apart(tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.sh", "#!/bin/bash\necho out1\necho err1 >&2\necho out2\n")
    result = run([str(script)])
    assert (result.status, result.exit_code, result.error) == (Status.COMPLETED, 0, "")
    assert result.stdout == "out1\nout2\n"
    assert result.stderr == "err1\n"
    assert result.to_outcome().output == "out1\nout2\n[stderr]\nerr1\n"


def test_non_zero_exit_fails_with_the_code_and_stderr(tmp_path: Path) -> None:
    script = write_script(
        tmp_path, "bad.sh", "#!/bin/bash\necho working\necho 'disk full' >&2\nexit 3\n"
    )
    outcome = run([str(script)]).to_outcome()
    assert (outcome.status, outcome.exit_code) == (Status.FAILED, 3)
    assert outcome.error == "exit code 3\ndisk full\n"
    assert outcome.output.startswith("working\n")


def test_a_child_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    script = write_script(tmp_path, "die.sh", "#!/bin/bash\nkill -KILL $$\n")
    result = run([str(script)])
    assert (result.status, result.exit_code) == (Status.FAILED, -9)
    assert "killed by SIGKILL" in result.error


def test_arguments_reach_the_child_verbatim_without_a_shell(tmp_path: Path) -> None:
    script = write_script(tmp_path, "args.sh", '#!/bin/bash\nprintf "[%s]\\n" "$@"\n')
    marker = tmp_path / "pwned"
    result = run([str(script), "two words", "$(touch " + str(marker) + ")", "; ls", "*"])
    assert result.stdout == f"[two words]\n[$(touch {marker})]\n[; ls]\n[*]\n"
    assert not marker.exists()


def test_the_working_directory_is_used(tmp_path: Path) -> None:
    result = run(["/bin/pwd"], cwd=tmp_path)
    assert result.stdout.strip() == str(tmp_path.resolve())


def test_output_beyond_the_cap_is_dropped_with_a_marker() -> None:
    code = "import sys; sys.stdout.write('x' * 1048576); sys.stderr.write('e' * 5000)"
    result = run([sys.executable, "-c", code], cap=1000)
    assert result.status is Status.COMPLETED
    kept, marker = result.stdout[:1000], result.stdout[1000:]
    assert kept == "x" * 1000
    assert marker == "\n[cronwell: 1047576 more bytes of stdout dropped; the cap is 1000 bytes]\n"
    assert result.stderr.startswith("e" * 1000 + "\n[cronwell: 4000 more bytes of stderr dropped")


def test_the_child_leads_a_process_group_of_its_own_in_the_service_session(
    tmp_path: Path,
) -> None:
    # its own group, so a stop reaches what it started; no session of its own, since
    # setsid() in the child made every start wait for the kernel's new autogroup
    script = write_script(
        tmp_path,
        "ids.sh",
        "#!/bin/bash\nread -r -a stat < /proc/$$/stat\necho $$ ${stat[4]} ${stat[5]}\n",
    )
    result = run([str(script)])
    pid, pgid, sid = (int(part) for part in result.stdout.split())
    assert pgid == pid != os.getpgrp()
    assert sid == os.getsid(0)


def test_timeout_kills_the_whole_group_including_a_background_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = write_script(
        tmp_path, "hang.sh", f"#!/bin/bash\nsleep 30 &\necho $! > {pid_file}\necho started\nwait\n"
    )
    started = time.monotonic()
    result = run([str(script)], timeout=0.5)
    took = time.monotonic() - started
    assert result.status is Status.TIMEOUT
    assert result.error.startswith("timed out after 0.5 s; process group stopped with SIGTERM")
    assert result.stdout == "started\n"
    assert 0.5 <= took < 1.5
    assert wait_gone(read_pid(pid_file))


def test_a_group_that_ignores_sigterm_gets_sigkill_after_the_grace(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = write_script(
        tmp_path,
        "stubborn.sh",
        f"#!/bin/bash\ntrap '' TERM\nsleep 30 &\necho $! > {pid_file}\nwhile true; do wait; done\n",
    )
    started = time.monotonic()
    result = run([str(script)], timeout=0.3, grace=0.3)
    took = time.monotonic() - started
    assert result.status is Status.TIMEOUT
    assert "SIGTERM, then SIGKILL (grace 0.3 s)" in result.error
    assert result.exit_code == -signal.SIGKILL
    assert 0.6 <= took < 1.6
    assert wait_gone(read_pid(pid_file))


def test_cancel_stops_a_running_script(tmp_path: Path) -> None:
    pid_file = tmp_path / "self.pid"
    script = write_script(tmp_path, "long.sh", f"#!/bin/bash\necho $$ > {pid_file}\nsleep 30\n")
    cancel = threading.Event()
    threading.Thread(target=lambda: (read_pid(pid_file), cancel.set()), daemon=True).start()
    started = time.monotonic()
    result = run([str(script)], timeout=None, cancel=cancel)
    assert result.status is Status.CANCELLED
    assert result.error.startswith("cancelled; process group stopped with SIGTERM")
    assert time.monotonic() - started < 1.5
    assert wait_gone(read_pid(pid_file))


def test_a_cancel_set_before_the_start_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = write_script(tmp_path, "touch.sh", f"#!/bin/bash\ntouch {marker}\n")
    cancel = threading.Event()
    cancel.set()
    result = run([str(script)], cancel=cancel)
    assert (result.status, result.exit_code) == (Status.CANCELLED, None)
    assert not marker.exists()


def test_background_processes_holding_the_pipes_are_stopped_after_exit(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    script = write_script(
        tmp_path, "leak.sh", f"#!/bin/bash\nsleep 30 &\necho $! > {pid_file}\nexit 0\n"
    )
    started = time.monotonic()
    result = run([str(script)], grace=0.3)
    assert (result.status, result.exit_code) == (Status.COMPLETED, 0)
    assert "still held the output 0.3 s after the script exited" in result.stdout
    assert time.monotonic() - started < 1.5
    assert wait_gone(read_pid(pid_file))


def test_detached_background_processes_are_left_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    script = write_script(
        tmp_path, "detach.sh", f"#!/bin/bash\nsleep 30 >/dev/null 2>&1 &\necho $! > {pid_file}\n"
    )
    result = run([str(script)], grace=0.3)
    pid = read_pid(pid_file)
    try:
        assert (result.status, result.stdout) == (Status.COMPLETED, "")
        assert not is_gone(pid)
    finally:
        os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)


def test_a_script_without_a_shebang_fails_to_start_with_a_hint(tmp_path: Path) -> None:
    script = write_script(tmp_path, "noshebang.sh", "echo hi\n")
    result = run([str(script)])
    assert (result.status, result.exit_code) == (Status.FAILED, None)
    assert result.error.startswith(f"cannot start {script}: Exec format error")
    assert "#!/bin/bash" in result.error


def test_a_missing_program_fails_to_start(tmp_path: Path) -> None:
    result = run([str(tmp_path / "absent")])
    assert result.status is Status.FAILED
    assert result.error == f"cannot start {tmp_path / 'absent'}: No such file or directory"


def test_an_empty_argv_is_a_failed_result() -> None:
    assert run([]).status is Status.FAILED
