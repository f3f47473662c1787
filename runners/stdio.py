"""Per-thread capture of sys.stdout and sys.stderr, for job classes in pool threads.

Many job classes run at once in one process, so swapping sys.stdout per run (as
contextlib.redirect_stdout does) would mix their output. Instead a routing proxy is
installed once on each stream: a write goes to the buffer the current thread has set,
or to the real stream when it has none. `print`, `sys.stdout.write` and logging
handlers writing to sys.stdout / sys.stderr (handlers created after the proxy went in)
are all captured. Not captured: threads the job starts itself (they have no buffer),
and writes straight to file descriptors 1 and 2 (C extensions, `os.write`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast

from engine.interfaces import STDOUT, OutputSink
from runners.capture import CappedBuffer

_current = threading.local()
_install_lock = threading.Lock()


def _sink() -> CappedBuffer | None:
    return cast(CappedBuffer | None, getattr(_current, "sink", None))


class ThreadRoutedStream:
    """A text stream that writes to this thread's capture buffer, else to `real`."""

    def __init__(self, real: TextIO, name: str = STDOUT) -> None:
        self.real = real
        #: STDOUT or STDERR: which stream's writes these are (the live output tells them apart)
        self.name = name

    def write(self, text: str) -> int:
        sink = _sink()
        if sink is None:
            return self.real.write(text)
        sink.write(text.encode("utf-8", errors="replace"), self.name)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _sink() is None:
            self.real.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno...
        return getattr(self.real, name)


def install() -> None:
    """Put the routing proxy on sys.stdout and sys.stderr unless it is there already
    (again after something, e.g. a test harness, swapped the streams)."""
    with _install_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, ThreadRoutedStream):
                setattr(sys, name, cast(TextIO, ThreadRoutedStream(stream, name)))


@contextmanager
def captured_output(cap: int, live: OutputSink | None = None) -> Iterator[CappedBuffer]:
    """Route this thread's stdout and stderr writes into one capped buffer (and to
    `live` as they happen, when given)."""
    install()
    buffer = CappedBuffer(cap, "output", live)
    previous = _sink()
    _current.sink = buffer
    try:
        yield buffer
    finally:
        _current.sink = previous
