"""WAL checkpoints on a thread of their own, not in the commit of whoever wrote last.

By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages.
A job write adds about 8 pages, so at 400 schedule-jobs a second every ~125th write
copied ~1,000 pages back into the database file and synced it, holding the store's
lock on the engine's loop thread: 1.5-17 ms, which every add queued behind it waited
out (issue 17's open-loop tail). Here the writer's own automatic checkpoint is kept
only as a backstop (`BACKSTOP_PAGES`), and a `Checkpointer` thread with a connection
of its own runs a PASSIVE checkpoint `INTERVAL` after a write: WAL lets a checkpoint
copy committed pages while the writer goes on appending, and a passive one never
waits for a lock, so no write waits for it. An idle store wakes it never.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

#: the writer connection's automatic checkpoint, pages: only reached when the thread
#: falls behind (or is gone), so the WAL stays bounded whatever happens to it
BACKSTOP_PAGES = 10_000
#: seconds between a write waking the thread and its checkpoint (writes meanwhile
#: join the same pass)
INTERVAL = 0.1
#: seconds `stop` waits for a pass under way to end
STOP_WAIT = 5.0

log = logging.getLogger(__name__)


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection after writes."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        interval: float = INTERVAL,
        name: str = "cronwell-checkpoint",
    ) -> None:
        self._connect = connect
        self._interval = interval
        self._name = name
        self._written = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        #: passes run, and what the last one reported: (busy, WAL frames, frames copied)
        self.passes = 0
        self.last: tuple[int, int, int] | None = None
        #: set after every pass (tests wait on it instead of sleeping)
        self.passed = threading.Event()

    def open(self) -> None:
        """Open the connection (`checkpoint` works from here, on the caller's thread)."""
        if self._db is None:
            self._db = self._connect()

    def start(self) -> None:
        """Open the connection and start the thread."""
        if self._thread is not None:
            return
        self.open()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        """A write is under way: checkpoint a little later. One attribute read when
        the thread is already woken (the writer's cost per write)."""
        if not self._written.is_set():
            self._written.set()

    @property
    def pending(self) -> bool:
        """Whether a write since the last pass waits for its checkpoint."""
        return self._written.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One passive checkpoint now, on this thread; None when it failed (the next
        write tries again, and the writer's backstop bounds the WAL meanwhile)."""
        db = self._db
        if db is None:
            return None
        try:
            row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            log.debug("passive checkpoint failed: %s", exc)
            return None
        self.passes += 1
        self.last = (int(row[0]), int(row[1]), int(row[2]))
        self.passed.set()
        return self.last

    def stop(self) -> None:
        """End the thread (after a pass under way) and close its connection."""
        self._stopping.set()
        self._written.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(STOP_WAIT)
            if thread.is_alive():  # a pass still running: its connection dies with it
                return
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _run(self) -> None:
        while True:
            self._written.wait()
            if self._stopping.wait(self._interval):
                return
            self._written.clear()
            self.checkpoint()
