"""The timer heap: which key is due next, with lazy removal.

Entries are `(fire_ts, seq, key)` as in CPython's `sched`: the unique, increasing `seq`
breaks ties in insertion order so keys are never compared. Re-scheduling or removing a
key does not search the heap; it only forgets the key's live `seq`, leaving a stale
entry that is skipped when it surfaces. When stale entries outnumber live ones the heap
is rebuilt, so memory stays within twice the live count.

Not thread-safe on purpose: only the engine loop thread touches it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class TimerHeap(Generic[K]):
    """A min-heap of fire timestamps keyed by job id (or any hashable key)."""

    __slots__ = ("_entries", "_live", "_seq")

    def __init__(self) -> None:
        self._entries: list[tuple[float, int, K]] = []
        #: key -> seq of its one live entry
        self._live: dict[K, int] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        """Number of live keys."""
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    @property
    def stale(self) -> int:
        """Entries left behind by re-scheduling or removal, not yet pruned."""
        return len(self._entries) - len(self._live)

    def push(self, key: K, fire_ts: float) -> None:
        """Schedule `key` at `fire_ts`, replacing any earlier schedule of the same key."""
        seq = next(self._seq)
        live = self._live
        if key in live and len(self._entries) > 2 * len(live) + 64:
            self._maybe_prune()  # only a re-schedule leaves a stale entry behind
        live[key] = seq
        heapq.heappush(self._entries, (fire_ts, seq, key))

    def extend(self, items: Iterable[tuple[K, float]]) -> None:
        """`push` each (key, fire_ts), in one pass: a batch at least as large as the heap
        (the start-up load's million) is appended and heapified once, O(n), instead of
        sifted in one entry at a time."""
        live, seq = self._live, self._seq
        added: list[tuple[float, int, K]] = []
        try:
            for key, fire_ts in items:
                number = next(seq)
                live[key] = number
                added.append((fire_ts, number, key))
        finally:  # `items` may raise part-way: what it gave is live, so it goes in
            self._merge(added)

    def _merge(self, added: list[tuple[float, int, K]]) -> None:
        entries = self._entries  # read after `items` ran: a removal meanwhile may prune
        if not entries:  # the start-up load: the batch becomes the heap, no copy
            heapq.heapify(added)
            self._entries = added
        elif len(added) >= len(entries):
            entries.extend(added)
            heapq.heapify(entries)
        else:
            for entry in added:
                heapq.heappush(entries, entry)
        self._maybe_prune()  # a key pushed again left its earlier entry stale

    def remove(self, key: K) -> bool:
        """Forget `key`'s schedule; True when it had one."""
        if self._live.pop(key, None) is None:
            return False
        self._maybe_prune()
        return True

    def peek(self) -> float | None:
        """Fire timestamp of the earliest live key; None when nothing is scheduled."""
        self._drop_stale_head()
        return self._entries[0][0] if self._entries else None

    def count_until(self, ts: float, limit: int) -> int:
        """How many entries are due at `ts` or earlier, counting at most `limit`.

        A walk from the root that stops at entries due later (their subtrees are all
        later too), so it costs what it counts, not the heap's size. Stale entries
        are counted: it is an estimate of the crowd, not an exact census.
        """
        entries = self._entries
        size = len(entries)
        count = 0
        pending = [0]
        while pending and count < limit:
            index = pending.pop()
            if index < size and entries[index][0] <= ts:
                count += 1
                pending.append(2 * index + 1)
                pending.append(2 * index + 2)
        return count

    def pop_due(self, now_ts: float) -> K | None:
        """Remove and return the earliest live key due at `now_ts`, else None."""
        self._drop_stale_head()
        entries = self._entries
        if not entries or entries[0][0] > now_ts:
            return None
        _, _, key = heapq.heappop(entries)
        del self._live[key]
        return key

    def clear(self) -> None:
        self._entries.clear()
        self._live.clear()

    def _drop_stale_head(self) -> None:
        entries, live = self._entries, self._live
        while entries:
            _, seq, key = entries[0]
            if live.get(key) == seq:
                return
            heapq.heappop(entries)

    def _maybe_prune(self) -> None:
        if len(self._entries) > 2 * len(self._live) + 64:
            live = self._live
            self._entries = [e for e in self._entries if live.get(e[2]) == e[1]]
            heapq.heapify(self._entries)
