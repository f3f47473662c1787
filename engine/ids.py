"""24-hex ObjectId-style ids, so generated ids look the same on every backend.

Layout as MongoDB's ObjectId: 4-byte seconds, 5 random bytes per process, 3-byte counter.
Written here so the engine needs no database driver to make one.
"""

from __future__ import annotations

import itertools
import os
import re
import time

_PROCESS_RANDOM = os.urandom(5)
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def new_id() -> str:
    """A fresh 24-hex id, increasing with time within a process.

    `next` on the shared count is one C call under the GIL: two threads never get the
    same number, so no lock is taken (the lock was over a quarter of an id's cost, and
    the loop makes one for every fire it records).
    """
    count = next(_counter) & 0xFFFFFF
    raw = int(time.time()).to_bytes(4, "big") + _PROCESS_RANDOM + count.to_bytes(3, "big")
    return raw.hex()


def is_object_id(value: object) -> bool:
    """True for a 24-hex lowercase string, the format generated ids take."""
    return isinstance(value, str) and _OBJECT_ID.match(value) is not None
