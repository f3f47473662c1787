"""Taking work off a queue in batches, for the engine's single-consumer threads.

The recorder and the event delivery thread each wake when something arrives, wait a
moment for more to join it, and take everything then waiting: one wake per batch
instead of one per item, which under load was several context switches per request
or per fire.
"""

from __future__ import annotations

import queue
import time
from typing import TypeVar

T = TypeVar("T")


def take_batch(source: queue.SimpleQueue[T], linger: float, limit: int) -> list[T]:
    """Block for one item, sleep `linger` seconds, then take what arrived (at most
    `limit` items in all)."""
    batch = [source.get()]
    time.sleep(linger)
    return take_more(source, batch, limit)


def take_more(source: queue.SimpleQueue[T], batch: list[T], limit: int) -> list[T]:
    """Add to `batch` what `source` holds now, up to `limit` items in all."""
    take_now = source.get_nowait
    while len(batch) < limit:
        try:
            batch.append(take_now())
        except queue.Empty:
            break
    return batch
