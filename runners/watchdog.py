"""The service's side of the watchdog process (runners/watchdog_helper.py), which
kills the process groups of running scripts the moment the service dies.

Why a process of its own rather than the kernel's parent-death signal: that signal
can only be set inside the child, before its exec, and Python 3.11 offers that only
through `preexec_fn` (which forces a full `fork` of the service, 2.4 -> 31 ms per start
with a 200 MB heap) or through a wrapper program exec'd first (`setpriv --pdeathsig`,
2 ms of CPU per start, bench.canary's fires 1.5-2 ms later at the median). Telling a
watchdog costs one `write(2)` after the start, off the path to the script's first
line, and reaches the whole process group, where the signal reached only the direct
child.

The watchdog starts with the first `watch` (or `start`, which start-up calls before
the service clears its inheritable capabilities, so a watchdog of a service holding
CAP_KILL keeps it and can stop another user's scripts). If it dies, the next `watch`
or `forget` finds the pipe broken and starts another, handing it every group still
running (a replacement starts with no capabilities left: it can stop scripts of the
service's own user, and the sweep on the next start the rest). What it cannot cover (the service killed between a start and its `watch`,
or a group that left the watch) the sweep on the next start does (runners/lifeline.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)
HELPER = Path(__file__).with_name("watchdog_helper.py")


class Watchdog:
    """One watchdog process and the groups it was told of; safe from any thread."""

    def __init__(self, argv: list[str] | None = None) -> None:
        self._argv = argv or [sys.executable, "-I", "-S", str(HELPER)]
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._groups: set[int] = set()
        self._warned = False

    @property
    def pid(self) -> int | None:
        """The watchdog process's pid, None before it started (for tests and logs)."""
        return None if self._process is None else self._process.pid

    def start(self) -> bool:
        """Start the watchdog now if it is not running; False when it cannot start."""
        with self._lock:
            return self._ensure_locked()

    def watch(self, group: int) -> None:
        """Kill process group `group` if the service dies before `forget(group)`."""
        with self._lock:
            self._groups.add(group)
            self._send_locked(f"+{group}\n".encode())

    def forget(self, group: int) -> None:
        """The run of `group` has ended: leave what it left behind alone."""
        with self._lock:
            self._groups.discard(group)
            self._send_locked(f"-{group}\n".encode())

    def close(self) -> None:
        """End the watchdog as the service's death would (it kills what is watched)."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            process.wait()

    def _send_locked(self, line: bytes) -> None:
        for _ in range(2):  # a dead watchdog: one restart, which sends every group
            if not self._ensure_locked():
                return
            assert self._process is not None and self._process.stdin is not None
            try:
                os.write(self._process.stdin.fileno(), line)
                return
            except OSError as exc:  # it died (EPIPE): reap it, start another
                log.warning("the watchdog process %s has gone (%s)", self._process.pid, exc)
                self._process.stdin.close()
                self._process.wait()
                self._process = None

    def _ensure_locked(self) -> bool:
        if self._process is not None:
            return True
        try:
            process = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                env={},
                close_fds=True,
                process_group=0,  # a terminal's signals are for the service, not for it
            )
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "no watchdog process (%s): scripts will not die with the service; "
                    "what they leave running is killed on the next start instead",
                    exc,
                )
            return False
        assert process.stdin is not None
        if self._groups:
            text = "".join(f"+{group}\n" for group in sorted(self._groups)).encode()
            try:
                os.write(process.stdin.fileno(), text)
            except OSError as exc:  # it died at once: no watchdog for now
                log.warning("the watchdog process %s has gone (%s)", process.pid, exc)
                process.stdin.close()
                process.wait()
                return False
        self._process = process
        return True


#: the service's one watchdog (every child process of every run)
WATCHDOG = Watchdog()
