"""Child processes that cannot outlive the service unnoticed.

Two measures, because either alone leaves a gap:

- **They die with it.** Every child's process group is watched by the watchdog
  process (runners/watchdog.py) while its run lasts: the moment the service dies,
  even by `kill -9`, the watchdog's pipe from it closes and it sends the whole group
  SIGKILL (the script and what it started in its group).
- **What is left is found and killed on the next start.** A service killed between a
  child's start and its watch, a watchdog that could not start, or a process that left
  its script's group (`setsid`) leaves processes behind. So every child gets
  `CRONWELL_EXECUTION_ID=<execution id>` in its environment, which its own children
  inherit, and on the next start the engine hands the ids of the runs it is about to
  mark `abandoned` to `kill_leftovers`, which kills every process of this user whose
  environment names one of them. A process that scrubs its environment (`env -i`)
  escapes that sweep; nothing else does.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Collection
from pathlib import Path

log = logging.getLogger(__name__)
#: the environment variable that names the execution a child process belongs to
MARKER = "CRONWELL_EXECUTION_ID"
PROC = Path("/proc")


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
