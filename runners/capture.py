"""Bounded capture of a job's output: keep the first `cap` bytes, count the rest.

Shared by child processes (one buffer per pipe) and job classes (one buffer per
execution behind the thread-routing stdout/stderr), so both truncate the same way and
say so with the same marker line. Nothing a job prints can grow the service's memory
past the cap. A `live` sink (the request's LiveOutput) gets every chunk as it arrives
too, so the output of a running job can be read before it ends; it applies its own cap.
"""

from __future__ import annotations

import threading

from engine.interfaces import STDERR, STDOUT, OutputSink


class CappedBuffer:
    """Bytes up to `cap`; beyond it data is dropped and only counted."""

    def __init__(self, cap: int, label: str = "output", live: OutputSink | None = None) -> None:
        self.cap = max(0, cap)
        self.label = label
        self.live = live
        self._chunks: list[bytes] = []
        self._kept = 0
        self._dropped = 0
        self._lock = threading.Lock()

    @property
    def dropped(self) -> int:
        return self._dropped

    def write(self, data: bytes, stream: str | None = None) -> None:
        """Keep `data`; the live sink hears it tagged with `stream` (a job class's one
        buffer says which), else with this buffer's own pipe (a child's stderr buffer)."""
        if self.live is not None:
            self.live.write(data, stream or (STDERR if self.label == STDERR else STDOUT))
        with self._lock:
            room = self.cap - self._kept
            if room > 0:
                piece = data[:room]
                self._chunks.append(piece)
                self._kept += len(piece)
            self._dropped += max(0, len(data) - max(room, 0))

    def text(self) -> str:
        """What was kept, decoded leniently, plus a marker line when bytes were dropped."""
        with self._lock:
            kept = b"".join(self._chunks).decode("utf-8", errors="replace")
            dropped = self._dropped
        if not dropped:
            return kept
        separator = "" if not kept or kept.endswith("\n") else "\n"
        return (
            f"{kept}{separator}[cronwell: {dropped} more bytes of {self.label} dropped; "
            f"the cap is {self.cap} bytes]\n"
        )
