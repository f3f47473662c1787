"""WAL checkpoints on a thread of their own, not in the commit of whoever wrote last.

With synchronous=NORMAL a commit never syncs; a checkpoint syncs twice (the WAL, then
the database file after copying its pages back), and SQLite ran it inside the commit
that took the WAL past 1,000 pages. A job write adds about 8, so at 400 schedule-jobs a
second every ~120th write copied ~60 pages and synced twice holding the store's lock on
the engine's loop thread (1.5-17 ms measured, more when other work loads the disk),
and every add queued behind it waited that out: issue 17's open-loop tail. Here the
writer's own automatic checkpoint is only a backstop (`BACKSTOP_PAGES`), and a
`Checkpointer` thread on a connection of its own runs a PASSIVE checkpoint (it copies
what is committed while the writer goes on appending, and never waits for a lock)
once `PASS_WRITES` writes have been made since its last pass, or once writes stop for
`INTERVAL` after at least `QUIET_WRITES` (fewer wait for more: a node's heartbeat alone
does not cost two syncs a beat). Not after every write: the first write after a pass that copied the whole
WAL starts the WAL afresh and syncs its header (SQLite's rule), so passes are spaced
to leave the writer one such sync per PASS_WRITES writes (two syncs per ~120 before).
An idle store never wakes the thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

#: the writer connection's automatic checkpoint, pages: only reached when the thread
#: falls behind (or is gone), so the WAL stays bounded whatever happens to it
BACKSTOP_PAGES = 10_000
#: writes after which a pass runs (about 8 WAL pages each: a 16 MB WAL at 4 KiB pages)
PASS_WRITES = 500
#: seconds without a write after which the writes since the last pass are checkpointed
INTERVAL = 0.25
#: writes since the last pass below which a pause in the writes runs no pass
QUIET_WRITES = 100
#: passes run at most after one, each for what was committed while the last one ran
CATCH_UP = 5
#: seconds `stop` waits for a pass under way to end
STOP_WAIT = 5.0

log = logging.getLogger(__name__)


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection after writes."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        interval: float = INTERVAL,
        pass_writes: int = PASS_WRITES,
        name: str = "cronwell-checkpoint",
        quiet_writes: int = QUIET_WRITES,
    ) -> None:
        self._connect = connect
        self._interval = interval
        self._pass_writes = pass_writes
        self._quiet_writes = quiet_writes
        self._name = name
        #: writes since the last pass (a count a race may lose one of: it only paces)
        self._writes = 0
        self._written = threading.Event()
        self._full = threading.Event()
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
        """A write is under way: count it towards the next pass (a few attribute reads:
        the writer's cost per write)."""
        self._writes += 1
        if not self._written.is_set():
            self._written.set()
        if self._writes >= self._pass_writes and not self._full.is_set():
            self._full.set()

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
        self._full.set()
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
            self._wait_for_pass()
            if self._stopping.is_set():
                return
            if not self._full.is_set() and self._writes < self._quiet_writes:
                self._written.clear()  # a few writes and a pause: wait for more
                continue
            self._full.clear()
            self._written.clear()
            self._writes = 0
            self._catch_up()

    def _catch_up(self) -> None:
        """A pass, then short ones for what was committed during the last (up to
        CATCH_UP), until one finds nothing new: a pass reports the WAL as it was when
        it began, the WAL starts afresh only once all of it was copied, and a WAL that
        never does grows to the backstop, whose checkpoint is the writer's again."""
        frames = -1
        for _ in range(1 + CATCH_UP):
            result = self.checkpoint()
            if result is None or result[1] == frames or self._stopping.is_set():
                return
            frames = result[1]

    def _wait_for_pass(self) -> None:
        """Until PASS_WRITES writes were counted or none came for INTERVAL (or stop)."""
        seen = self._writes
        while not self._full.wait(self._interval):
            if self._writes == seen:
                return
            seen = self._writes
