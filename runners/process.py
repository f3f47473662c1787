"""Child processes for jobs: an argv list (never a shell), its own process group,
both pipes captured up to a cap, and a timeout or cancel that stops the whole group.

How the waiting works (no busy loop): a reaper thread blocks in `waitpid` and sets an
Event the moment the child exits; two reader threads drain stdout and stderr
concurrently so neither pipe can fill and stall the child. The calling thread waits on
that Event with the time left before the deadline, in slices of
CANCEL_CHECK_INTERVAL, because `threading.Event` offers no way to wait on the
caller's cancel Event and the exit Event at once: an exit or a timeout is therefore
noticed at once, a cancel within CANCEL_CHECK_INTERVAL.

A child's process group is watched from its start until its run ends, so it dies with
the service (runners/watchdog.py), and the child names its execution in its
environment, for the next start to find what it left behind (runners/lifeline.py).

Stopping: SIGTERM to the whole group, then SIGKILL to the group once the leader has
exited and the pipes have closed, or the grace (default 2 s) has run out, whichever
comes first. If the script itself exits but processes it left in the background still
hold the output pipes, the run cannot finish: after the grace the group is stopped the
same way and the output says so. Background processes that let go of the pipes
(`cmd >/dev/null 2>&1 &`) are left running: the script chose to detach them.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.interfaces import CancelSignal, Outcome, OutputSink
from engine.model import Status
from runners import lifeline
from runners.capture import CappedBuffer
from runners.environment import child_environment
from runners.identity import RunAs
from runners.watchdog import WATCHDOG

DEFAULT_GRACE = 2.0
CANCEL_CHECK_INTERVAL = 0.1
READ_CHUNK = 64 * 1024


@dataclass(slots=True)
class ProcessResult:
    """What a child did. `error` is empty for COMPLETED; for FAILED it says
    `exit code N` (or the killing signal) followed by stderr."""

    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    error: str = ""

    @property
    def output(self) -> str:
        return combine_output(self.stdout, self.stderr)

    def to_outcome(self) -> Outcome:
        return Outcome(
            status=self.status, output=self.output, error=self.error, exit_code=self.exit_code
        )


def combine_output(stdout: str, stderr: str) -> str:
    """One execution output: stdout, then stderr under a `[stderr]` line."""
    if not stderr:
        return stdout
    separator = "" if not stdout or stdout.endswith("\n") else "\n"
    return f"{stdout}{separator}[stderr]\n{stderr}"


def describe_exit(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"exit code {code} (killed by {name})"


def run_process(
    argv: Sequence[str],
    *,
    timeout: float | None,
    output_cap: int,
    cancel: CancelSignal,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    grace: float = DEFAULT_GRACE,
    execution_id: str | None = None,
    run_as: RunAs | None = None,
    live: OutputSink | None = None,
    on_start: Callable[[], None] | None = None,
) -> ProcessResult:
    """Run argv to a ProcessResult: exit 0 COMPLETED, non-zero FAILED, TIMEOUT when
    `timeout` seconds pass first, CANCELLED when `cancel` is set first. Never raises
    for a child that cannot start: that is a FAILED result saying why.

    The child dies with the service, and with `execution_id` its environment names the
    execution, so what it leaves running is found on the next start (runners/lifeline.py).
    `env` is the child's whole environment; None gives it the allow-listed service
    variables only (runners.environment), never the service's own environment.
    With `run_as` the child starts as that OS user (its groups, its HOME). Both pipes
    are also written to `live` as they are read, when given. `on_start` is called
    once the child is spawned (what waits for the start stops waiting)."""
    command = [str(part) for part in argv]
    if not command:
        return ProcessResult(Status.FAILED, None, "", "", "nothing to run: the argv list is empty")
    if cancel.is_set():
        return ProcessResult(Status.CANCELLED, None, "", "", "cancelled before it started")
    if execution_id is not None:
        env = {**(os.environ if env is None else env), lifeline.MARKER: execution_id}
    try:
        child = _Child.start(command, output_cap, cwd, env, run_as, live, on_start)
    except OSError as exc:
        return ProcessResult(Status.FAILED, None, "", "", _spawn_error(command[0], exc))
    try:
        return _finish(child, timeout, cancel, grace)
    finally:
        WATCHDOG.forget(child.proc.pid)


def _finish(
    child: _Child, timeout: float | None, cancel: CancelSignal, grace: float
) -> ProcessResult:
    """Wait for a started child (stopping its group on a timeout or cancel) and say
    what it did."""
    stopped_for = child.wait_for_exit(timeout, cancel)
    notes: list[str] = []
    how = ""
    if stopped_for is not None:
        how = child.stop_group(grace)
    elif not child.pipes_closed(within=grace):
        how = child.stop_group(grace)
        notes.append(
            f"processes left in the background still held the output {grace:g} s after "
            f"the script exited, so its process group was stopped with {how}"
        )
    if not child.pipes_closed(within=grace):
        notes.append("output may be incomplete: a process outside the group holds the pipes")

    exit_code = child.proc.returncode if child.exited.is_set() else None
    stdout = child.stdout.text() + "".join(f"[cronwell: {note}]\n" for note in notes)
    stderr = child.stderr.text()
    if stopped_for is Status.TIMEOUT:
        error = f"timed out after {timeout:g} s; process group stopped with {how}"
        return ProcessResult(Status.TIMEOUT, exit_code, stdout, stderr, error)
    if stopped_for is Status.CANCELLED:
        error = f"cancelled; process group stopped with {how}"
        return ProcessResult(Status.CANCELLED, exit_code, stdout, stderr, error)
    if exit_code == 0:
        return ProcessResult(Status.COMPLETED, 0, stdout, stderr)
    error = describe_exit(exit_code) if exit_code is not None else "the process did not exit"
    if stderr.strip():
        error = f"{error}\n{stderr}"
    return ProcessResult(Status.FAILED, exit_code, stdout, stderr, error)


class _Child:
    """A started child with its reaper and reader threads."""

    def __init__(
        self, proc: subprocess.Popen[bytes], output_cap: int, live: OutputSink | None = None
    ) -> None:
        self.proc = proc
        self.exited = threading.Event()
        self.stdout = CappedBuffer(output_cap, "stdout", live)
        self.stderr = CappedBuffer(output_cap, "stderr", live)
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [
            _daemon(_drain, proc.stdout, self.stdout),
            _daemon(_drain, proc.stderr, self.stderr),
        ]
        _daemon(self._reap)

    @classmethod
    def start(
        cls,
        command: list[str],
        output_cap: int,
        cwd: Path | None,
        env: Mapping[str, str] | None,
        run_as: RunAs | None = None,
        live: OutputSink | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> _Child:
        environment = child_environment() if env is None else dict(env)
        if run_as is not None:
            environment["HOME"] = run_as.home
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=environment,
            # its own process group (killpg reaches all it starts), not a session of its
            # own: with the kernel's autogroups, setsid() in the child made each start
            # wait for a new scheduling group, 2 ms on a quiet machine and 10-20 ms with
            # another thread of the service busy (the list reader), before the exec
            process_group=0,
            close_fds=True,
            user=None if run_as is None else run_as.uid,
            group=None if run_as is None else run_as.gid,
            extra_groups=None if run_as is None else list(run_as.groups),
        )
        WATCHDOG.watch(proc.pid)  # after the start: not on the way to its first line
        try:
            if on_start is not None:
                on_start()  # inside: a hook that raises leaves no child behind
            return cls(proc, output_cap, live)
        except BaseException:  # could not start a thread: do not leave the child behind
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            WATCHDOG.forget(proc.pid)
            raise

    def _reap(self) -> None:
        self.proc.wait()
        self.exited.set()

    def wait_for_exit(self, timeout: float | None, cancel: CancelSignal) -> Status | None:
        """None when the child exited by itself, else TIMEOUT or CANCELLED."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            step = (
                CANCEL_CHECK_INTERVAL
                if remaining is None
                else min(remaining, CANCEL_CHECK_INTERVAL)
            )
            if self.exited.wait(max(0.0, step)):
                return None
            if cancel.is_set():
                return Status.CANCELLED
            if deadline is not None and time.monotonic() >= deadline:
                return Status.TIMEOUT

    def pipes_closed(self, within: float) -> bool:
        """True once both pipes reached end of file (every holder exited)."""
        deadline = time.monotonic() + within
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        return not any(reader.is_alive() for reader in self._readers)

    def stop_group(self, grace: float) -> str:
        """SIGTERM the group; SIGKILL what is left once the leader and pipes are done
        or the grace is over. Returns how it was stopped, for the error text."""
        if not _kill_group(self.proc.pid, signal.SIGTERM):
            return "nothing (the group had already exited)"
        deadline = time.monotonic() + grace
        self.exited.wait(grace)
        self.pipes_closed(within=max(0.0, deadline - time.monotonic()))
        if not _kill_group(self.proc.pid, signal.SIGKILL):
            return "SIGTERM"
        self.exited.wait(grace)  # SIGKILL cannot be refused; only an uninterruptible wait delays it
        return f"SIGTERM, then SIGKILL (grace {grace:g} s)"


def _kill_group(pgid: int, sig: signal.Signals) -> bool:
    """Signal a whole process group; False when no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _drain(stream: IO[bytes], sink: CappedBuffer) -> None:
    """Read a pipe to its end: kept up to the cap, the rest read and dropped."""
    fd = stream.fileno()
    try:
        while chunk := os.read(fd, READ_CHUNK):
            sink.write(chunk)
    finally:
        stream.close()


def _daemon(target: Callable[..., object], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _spawn_error(program: str, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOEXEC:
        reason += " (a script must start with a #! line such as #!/bin/bash)"
    return f"cannot start {program}: {reason}"
