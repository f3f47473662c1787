"""Generated ids: 24 lowercase hex digits laid out as a MongoDB ObjectId (seconds,
process bytes, counter), distinct within a process."""

from __future__ import annotations

import threading
import time

from engine.ids import is_object_id, new_id


def test_an_id_is_seconds_then_process_bytes_then_a_counter() -> None:
    before = int(time.time())
    first, second = new_id(), new_id()
    after = int(time.time())
    assert is_object_id(first) and is_object_id(second)
    assert before <= int(first[:8], 16) <= after
    assert first[8:18] == second[8:18]  # the same process
    assert (int(second[18:], 16) - int(first[18:], 16)) % (1 << 24) == 1


def test_ids_made_on_many_threads_at_once_are_distinct() -> None:
    made: list[list[str]] = [[] for _ in range(8)]

    def make(into: list[str]) -> None:
        into.extend(new_id() for _ in range(2000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i for into in made for i in into]
    assert len(set(ids)) == len(ids) == 16000
