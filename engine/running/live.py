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


class LiveOutput:
    """Bytes up to `cap` in arrival order (stdout and stderr interleaved as written)."""

    __slots__ = ("_chunks", "_dropped", "_kept", "_lock", "cap", "finished")

    def __init__(self, cap: int) -> None:
        self.cap = max(0, cap)
        self._chunks: list[bytes] = []
        self._kept = 0
        self._dropped = 0
        self._lock = threading.Lock()
        #: set once the run returned: no more bytes will come
        self.finished = False

    def write(self, data: bytes) -> None:
        """Append what a job printed; past the cap it is only counted."""
        if not data:
            return
        with self._lock:
            room = self.cap - self._kept
            if room >= len(data):
                self._chunks.append(data)
                self._kept += len(data)
                return
            if room > 0:
                self._chunks.append(data[:room])
                self._kept += room
            self._dropped += len(data) - max(room, 0)

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
