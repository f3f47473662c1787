"""The start journal: which runs a process started, kept where a crash cannot lose it.

Recovery must tell a claimed fire that never started (run it again) from one that did
(abandon it): the store's `running` mark says so, but the recorder thread writes it a
moment after the start, and writing it before the start costs a store transaction per
run, during which the worker waits behind the recorder's and the loop's batches (on
SQLite at 2,000 fires/s that made starts fall ~250 ms behind, against 5 ms).

So a worker appends the execution id to this process's journal file before it starts a
run: one `write(2)` on an O_APPEND descriptor, a few microseconds. The data is in the
kernel once the call returns, so it survives the process being killed (`kill -9`, an
OOM kill), though not a power cut: the same guarantee as the SQLite store's WAL with
`synchronous=NORMAL`. On the next start, `take_left_over` reads the journals of dead
processes: an execution still `queued` in the store whose id is there did start
(recovery abandons it); any other `queued` one never started.

Bounded: a journaled start is forgotten once the recorder has stored its `running`
mark or its terminal record (`recorded`). The journal rotates to a new file every
`ROTATE_AFTER` starts, and a file is deleted as soon as every start in it is recorded,
so a busy service keeps one or two small files. Each process holds an exclusive
`flock` on its files for its lifetime; a file whose lock can be taken belongs to a
process that is gone (the kernel drops the lock with the process), so a start never
reads or deletes a live process's journal.

The journal is local to a machine. With several nodes on one store, a node restarting
reads its own; a node on another machine taking over a dead node's fires cannot, and
has only the store's `running` mark to go by, so a run started before its mark landed
could start again there. That window is the recorder's LINGER (5 ms) plus the batches
queued ahead of the mark: measured by bench.journal_window while LINGER was 1 ms, 1.5 ms
median at a steady rate on SQLite, tens of milliseconds in a burst, more on a slow store
(README, "Several nodes"). This is why the recorder never holds its batches back in a
crowd when the engine has a journal (engine/running/recorder.py, MAX_DEFER).
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SUFFIX = ".journal"
#: starts written to one file before the journal moves to a new one
ROTATE_AFTER = 10_000


class StartJournal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        #: generation -> (descriptor, path, starts in it not yet recorded)
        self._files: dict[int, list[Any]] = {}
        self._generation = 0
        self._lines = 0
        #: execution id -> the generation its start was written to, until recorded
        self._pending: dict[str, int] = {}
        #: journals of dead processes, read by `take_left_over`, deleted by `forget`
        self._left_over: list[Path] = []

    def take_left_over(self) -> set[str]:
        """Ids of the runs that processes now gone started (see the module docstring)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        own = {entry[1] for entry in self._files.values()}
        started: set[str] = set()
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            if path in own:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive: its runs are its own
                with os.fdopen(os.dup(fd), "rb") as file:
                    started.update(line.decode() for line in file.read().split())
                self._left_over.append(path)
            finally:
                os.close(fd)
        return started

    def forget_left_over(self) -> None:
        """Delete the dead processes' journals, once recovery has recorded their runs."""
        for path in self._left_over:
            path.unlink(missing_ok=True)
        self._left_over.clear()

    def open(self) -> None:
        """Create and lock this process's first journal file."""
        with self._lock:
            self._rotate_locked()

    def close(self) -> None:
        """At a clean stop: files whose starts are all recorded go; one still holding
        a start the recorder could not store stays for the next start to read."""
        with self._lock:
            for fd, path, pending in self._files.values():
                if pending == 0:
                    path.unlink(missing_ok=True)
                os.close(fd)
            self._files.clear()
            self._pending.clear()

    def started(self, execution_id: str) -> None:
        """Record that the run of `execution_id` is about to start (before it does)."""
        line = f"{execution_id}\n".encode()
        with self._lock:
            current = self._files.get(self._generation)
            if current is None:
                raise RuntimeError("the start journal is not open")
            os.write(current[0], line)
            current[2] += 1
            self._pending[execution_id] = self._generation
            self._lines += 1
            if self._lines >= ROTATE_AFTER:
                self._rotate_locked()

    def recorded(self, execution_ids: Iterable[str]) -> None:
        """The recorder stored these executions' `running` marks or terminal records:
        their starts need no journal any more."""
        with self._lock:
            for execution_id in execution_ids:
                generation = self._pending.pop(execution_id, None)
                if generation is None:
                    continue
                entry = self._files[generation]
                entry[2] -= 1
                if entry[2] == 0 and generation != self._generation:
                    self._drop_locked(generation)

    @property
    def files(self) -> int:
        """Journal files this process holds open (one, or two just after a rotation)."""
        return len(self._files)

    def _rotate_locked(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        # locked under another name, then renamed: a start scanning the folder never
        # sees a live process's file before its lock is taken
        making = path.with_suffix(".new")
        fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        making.rename(path)
        previous = self._generation
        self._generation += 1
        self._files[self._generation] = [fd, path, 0]
        self._lines = 0
        old = self._files.get(previous)
        if old is not None and old[2] == 0:
            self._drop_locked(previous)

    def _drop_locked(self, generation: int) -> None:
        fd, path, _ = self._files.pop(generation)
        path.unlink(missing_ok=True)
        os.close(fd)
