"""The watchdog process: kills the process groups of running scripts when the service
dies (runners/watchdog.py starts it and tells it what to watch).

Run as a file (`python -I -S watchdog_helper.py`), importing nothing of the project.
Its stdin is a pipe from the service, one line per change: `+<pgid>` when a script
started, `-<pgid>` when its run ended. Only the service holds the pipe's other end, so
end of file means the service has gone, however it went (`kill -9` too): every group
still watched then gets SIGKILL, and the watchdog exits. It starts nothing itself.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable


def read_watched(lines: Iterable[bytes]) -> set[int]:
    """The groups still watched once `lines` (an iterable of `+N` / `-N`) ended."""
    watched: set[int] = set()
    for line in lines:
        sign, number = line[:1], line[1:].strip()
        if not number.isdigit():
            continue
        if sign == b"+":
            watched.add(int(number))
        elif sign == b"-":
            watched.discard(int(number))
    return watched


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the service's to handle
    for group in read_watched(sys.stdin.buffer):
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:  # already gone
            continue
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
