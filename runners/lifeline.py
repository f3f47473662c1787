"""Child processes that cannot outlive the service unnoticed.

Two measures, because either alone leaves a gap:

- **They die with it.** Every child is started through `setpriv --pdeathsig KILL`
  (util-linux), which sets the Linux parent-death signal and then execs the program:
  the moment the service dies, even by `kill -9`, the kernel sends the child SIGKILL.
  A wrapper rather than a `preexec_fn`: a `preexec_fn` forces a full `fork()` of the
  service instead of `vfork`, measured at 2.4 -> 31 ms per start with a 200 MB heap,
  while the wrapper's extra exec costs 0.8 ms whatever the heap. The death signal
  fires when the *thread* that started the child ends, not the process: children are
  started from the worker pool's threads, which live as long as the pool, and a run
  reaps its child before its thread takes other work or ends.
- **What is left is found and killed on the next start.** The parent-death signal
  reaches only the direct child (a script's own children, in its process group, live
  on), and a service killed between the fork and the wrapper's `prctl` leaves even the
  child. So every child gets `CRONWELL_EXECUTION_ID=<execution id>` in its environment,
  which its own children inherit, and on the next start the engine hands the ids of
  the runs it is about to mark `abandoned` to `kill_leftovers`, which kills every
  process of this user whose environment names one of them. A process that scrubs its
  environment (`env -i`) escapes that sweep; nothing else does.

`setpriv` execs with `execvp`, which would run a file without a `#!` line under
/bin/sh and reports a failed exec as exit status 126/127 with a message: `wrapped`
refuses such a file up front and `exec_failure` turns the message back into the
"cannot start" error a direct exec gives, so results read the same with or without
the wrapper. Where `setpriv` is missing, children start unwrapped (logged once) and
the sweep on the next start is what remains.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
from collections.abc import Collection, Sequence
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)
#: the environment variable that names the execution a child process belongs to
MARKER = "CRONWELL_EXECUTION_ID"
SETPRIV_FAILED = "setpriv: failed to execute "
#: what a file the kernel can execute starts with: a #! line or an ELF header
EXECUTABLE_MAGIC = (b"#!", b"\x7fELF")
PROC = Path("/proc")


@cache
def _setpriv() -> str | None:
    found = shutil.which("setpriv")
    if found is None:
        log.warning(
            "setpriv (util-linux) not found: child processes will not die with the "
            "service; leftovers are killed on the next start instead"
        )
    return found


def wrapped(command: Sequence[str]) -> list[str]:
    """`command` prefixed with the parent-death wrapper (unchanged without setpriv).

    Raises OSError(ENOEXEC) for an existing file the kernel could not execute, as an
    unwrapped exec would."""
    setpriv = _setpriv()
    if setpriv is None:
        return list(command)
    _check_executable(command[0])
    return [setpriv, "--pdeathsig", "KILL", "--", *command]


def _check_executable(program: str) -> None:
    path = program if "/" in program else shutil.which(program)
    if path is None:
        return  # the exec reports it
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:
        return  # missing, a directory, unreadable: the exec reports it the same way
    if not head.startswith(EXECUTABLE_MAGIC):
        raise OSError(errno.ENOEXEC, os.strerror(errno.ENOEXEC), program)


def exec_failure(exit_code: int | None, stdout: str, stderr: str, program: str) -> str | None:
    """The reason the wrapper could not exec `program` (e.g. "No such file or
    directory"), or None when the program ran."""
    prefix = f"{SETPRIV_FAILED}{program}: "
    if exit_code not in (126, 127) or stdout or not stderr.startswith(prefix):
        return None
    reason = stderr[len(prefix) :]
    if "\n" in reason.rstrip("\n"):
        return None  # more than the wrapper's one line: the program's own output
    return reason.rstrip("\n")


def kill_leftovers(execution_ids: Collection[str]) -> int:
    """SIGKILL every process whose environment names one of `execution_ids`; returns
    how many were killed. Only this user's processes can be read, and only those
    matter: the service started its children as itself."""
    wanted = {f"{MARKER}={execution_id}".encode() for execution_id in execution_ids}
    if not wanted:
        return 0
    killed = 0
    me = os.getpid()
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or another user's
            continue
        if wanted.isdisjoint(environment.split(b"\0")):
            continue
        try:
            os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue
        killed += 1
        log.warning("killed process %s left running by a run of a stopped cronwell", entry.name)
    return killed
