"""Helpers shared by the runner tests: real script files and real process checks."""

from __future__ import annotations

import time
from pathlib import Path

import psutil


def write_script(folder: Path, name: str, body: str, mode: int = 0o755) -> Path:
    """A script file with the given text and permission bits."""
    path = folder / name
    path.write_text(body)
    path.chmod(mode)
    return path


def is_gone(pid: int) -> bool:
    """True when the process no longer runs (a zombie awaiting its reaper counts)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, within: float = 2.0) -> bool:
    """Signals are delivered asynchronously: give a killed process a moment to go."""
    deadline = time.monotonic() + within
    while not is_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def read_pid(path: Path, within: float = 2.0) -> int:
    """The pid a script wrote to a file (waiting briefly for the write)."""
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no pid written to {path}")
        time.sleep(0.02)
    return int(path.read_text())
