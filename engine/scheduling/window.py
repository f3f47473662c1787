"""A load window: the timetable holds only the jobs due within `ahead` seconds.

A million jobs on daily schedules need not all sit in memory to be fired on time: the
store keeps every job's next_run_time in an indexed column, so the engine can read the
jobs as they come near. With a window, start-up loads only what is due by `now + ahead`
(and the rows the observers learn from), which makes a start cost what is due soon, not
what is stored; each loop step then tops the window up a page at a time
(`SchedulerStore.due_job_rows`, in (next_run_time, id) order) whenever less than half
of it is left, reading ahead of the due times by at least `ahead / 2`.

The invariant, kept on the loop thread alone: every active job whose (next_run_time, id)
is at or before the cursor has a slot, and no slot is due after the cursor's time
(`Timetable.horizon_ts`): a job added, moved or fired past it is dropped from memory,
and the store (written before the timetable changes, on this same thread) holds its
time for the window to find. A page re-read that meets a job already in memory
replaces its slot with the store's row, which is never older: this node's job writes
are made by the loop thread before it changes the timetable, and other nodes' reach
it through the change feed, which reloads from the store as well.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.errors import StoreError
from engine.interfaces import JOB_ROW_FIELDS, SchedulerStore
from engine.model import as_utc
from engine.scheduling.timetable import Timetable

log = logging.getLogger(__name__)
#: rows one step reads: a page costs the loop ~2-5 ms, so a fire due meanwhile is late
#: by at most about that
WINDOW_PAGE = 500
#: seconds between tries after a read failed (a locked or unreachable store); the half
#: of the window still loaded keeps fires on time meanwhile
RETRY_AFTER = 1.0
_TIME_AT = JOB_ROW_FIELDS.index("next_run_time")


class LoadWindow:
    """Which jobs the timetable holds, and the reads that slide that window forward."""

    def __init__(
        self, store: SchedulerStore, timetable: Timetable, ahead: float, page: int = WINDOW_PAGE
    ) -> None:
        if ahead <= 0:
            raise ValueError(f"a load window must look ahead a positive time, not {ahead}")
        self._store = store
        self._timetable = timetable
        self.ahead = ahead
        self._page = max(page, 1)
        #: every job at or before (time, id) is loaded; an id of None: all of that time
        self._cursor: tuple[datetime, str | None] | None = None
        #: no read before this timestamp (after a failed one)
        self._retry_ts = 0.0

    @property
    def cursor(self) -> tuple[datetime, str | None] | None:
        return self._cursor

    def open(self, now: datetime) -> datetime:
        """Start the window at `now`: the time the start-up load reads up to
        (`SchedulerStore.job_rows(due_by=...)`), which the timetable's horizon becomes."""
        until = now + timedelta(seconds=self.ahead)
        self._move_to(until, None)
        return until

    def behind(self, now_ts: float) -> bool:
        """True when `advance` would read a page: less than half the window is left, or
        a top-up is under way (its last page was full)."""
        cursor = self._cursor
        if cursor is None:
            return False
        return cursor[1] is not None or self._timetable.horizon_ts <= now_ts + self.ahead / 2

    def wait(self, now_ts: float) -> float | None:
        """Seconds until `advance` has work (None: no window)."""
        cursor = self._cursor
        if cursor is None:
            return None
        due = self._retry_ts
        if cursor[1] is None:
            due = max(self._timetable.horizon_ts - self.ahead / 2, due)
        return max(0.0, due - now_ts)

    def advance(self, now: datetime) -> int:
        """Read one page of what comes next, up to `now + ahead`, when behind; return
        how many jobs it scheduled."""
        cursor, now_ts = self._cursor, now.timestamp()
        if cursor is None or not self.behind(now_ts) or now_ts < self._retry_ts:
            return 0
        until = now + timedelta(seconds=self.ahead)
        try:
            rows = self._store.due_job_rows(cursor, until, self._page)
            edge = (until, None) if len(rows) < self._page else (_time_of(rows[-1]), rows[-1][0])
        except Exception as exc:  # the fires in memory go on; the read is tried again
            if isinstance(exc, StoreError):
                log.warning("load window: reading the jobs due next failed (%s)", exc)
            else:  # a bug: its traceback, once a try
                log.exception("load window: reading the jobs due next failed")
            self._retry_ts = now_ts + RETRY_AFTER
            return 0
        self._move_to(*edge)
        # after the move: the timetable keeps no row due past its horizon
        try:
            return self._timetable.put_rows([rows]) if rows else 0
        except Exception:  # a row it cannot take: the page again, one row at a time
            return self._put_each(rows)

    def _put_each(self, rows: Sequence[Sequence[Any]]) -> int:
        """Put each row on its own, logging and leaving out those that fail (a stored
        trigger that no longer parses), so one bad job never keeps the rest of its page
        out of memory; a row put twice replaces itself."""
        scheduled = 0
        for row in rows:
            try:
                scheduled += self._timetable.put_rows([[row]])
            except Exception as exc:
                log.warning("load window: job %s cannot be scheduled (%s); left out", row[0], exc)
        return scheduled

    def _move_to(self, when: datetime, job_id: str | None) -> None:
        self._cursor = (when, job_id)
        self._timetable.horizon_ts = when.timestamp()


def _time_of(row: Sequence[Any]) -> datetime:
    """A row's next_run_time as an aware UTC datetime (a store may give its text)."""
    when = row[_TIME_AT]
    return as_utc(datetime.fromisoformat(when) if isinstance(when, str) else when)
