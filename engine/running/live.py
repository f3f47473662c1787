"""Output of a running execution, readable while it is produced.

A runner writes what a job prints into its request's `LiveOutput` (as well as into its
own capped capture); readers on other threads (the API's execution view and output
stream) ask for the bytes past an offset they already have. It keeps at most `cap`
bytes, as the execution's stored output does, and counts what it drops, so a chatty
job costs no more memory while it runs than its record will once it ends.

The executor keeps one per running execution (`Executor.live_output`) from the
moment it starts until its terminal record is written; a reader that finds none reads
the store, which by then holds the whole output.
"""

from __future__ import annotations

import threading

from engine.interfaces import STDERR, STDOUT


class LiveOutput:
    """Bytes up to `cap` in arrival order (stdout and stderr interleaved as written),
    with the kept byte ranges that came from stderr, so a reader can tell them apart."""

    __slots__ = ("_chunks", "_dropped", "_kept", "_lock", "_stderr", "cap", "finished")

    def __init__(self, cap: int) -> None:
        self.cap = max(0, cap)
        self._chunks: list[bytes] = []
        self._kept = 0
        self._dropped = 0
        #: [start, end) offsets of kept stderr bytes, in order; touching ranges merged
        self._stderr: list[list[int]] = []
        self._lock = threading.Lock()
        #: set once the run returned: no more bytes will come
        self.finished = False

    def write(self, data: bytes, stream: str = STDOUT) -> None:
        """Append what a job printed; past the cap it is only counted."""
        if not data:
            return
        with self._lock:
            room = self.cap - self._kept
            kept = data if room >= len(data) else data[: max(room, 0)]
            if kept:
                start = self._kept
                self._chunks.append(kept)
                self._kept += len(kept)
                if stream == STDERR:
                    self._mark_stderr(start, self._kept)
            self._dropped += len(data) - len(kept)

    def _mark_stderr(self, start: int, end: int) -> None:
        if self._stderr and self._stderr[-1][1] == start:
            self._stderr[-1][1] = end
        else:
            self._stderr.append([start, end])

    def read_parts(self, offset: int = 0) -> list[tuple[str, bytes]]:
        """The kept bytes from `offset` on, cut where the stream changes:
        [(STDOUT or STDERR, bytes), ...] in arrival order."""
        with self._lock:
            if offset >= self._kept:
                return []
            if len(self._chunks) > 1:
                self._chunks = [b"".join(self._chunks)]
            data, end = self._chunks[0], self._kept
            ranges = [(max(a, offset), b) for a, b in self._stderr if b > offset]
        parts: list[tuple[str, bytes]] = []
        at = offset
        for start, stop in ranges:
            if start > at:
                parts.append((STDOUT, data[at:start]))
            parts.append((STDERR, data[start:stop]))
            at = stop
        if at < end:
            parts.append((STDOUT, data[at:end]))
        return parts

    @property
    def size(self) -> int:
        """Bytes kept so far (an offset past everything readable now)."""
        return self._kept

    @property
    def dropped(self) -> int:
        return self._dropped

    def read(self, offset: int = 0) -> bytes:
        """The kept bytes from `offset` on (b"" when there are none yet)."""
        with self._lock:
            if offset >= self._kept:
                return b""
            if len(self._chunks) > 1:  # join once, so later reads slice one buffer
                self._chunks = [b"".join(self._chunks)]
            return self._chunks[0][offset:]
