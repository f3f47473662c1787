"""TimerHeap: ordering, ties, lazy removal and pruning."""

from __future__ import annotations

from engine.scheduling.heap import TimerHeap


def drain(heap: TimerHeap[str], now_ts: float) -> list[str]:
    keys = []
    while (key := heap.pop_due(now_ts)) is not None:
        keys.append(key)
    return keys


def test_pops_in_time_order_and_ties_in_insertion_order() -> None:
    heap: TimerHeap[str] = TimerHeap()
    heap.push("c", 3.0)
    heap.push("a", 1.0)
    heap.push("b1", 2.0)
    heap.push("b2", 2.0)
    assert heap.peek() == 1.0
    assert drain(heap, 2.5) == ["a", "b1", "b2"]
    assert heap.peek() == 3.0
    assert len(heap) == 1


def test_push_again_reschedules_and_remove_forgets() -> None:
    heap: TimerHeap[str] = TimerHeap()
    heap.push("a", 1.0)
    heap.push("b", 2.0)
    heap.push("a", 5.0)  # moved later: the 1.0 entry is now stale
    assert heap.remove("b") is True
    assert heap.remove("b") is False
    assert "b" not in heap and "a" in heap
    assert drain(heap, 4.0) == []
    assert heap.peek() == 5.0
    assert drain(heap, 5.0) == ["a"]
    assert heap.peek() is None


def test_stale_entries_are_pruned_when_they_outnumber_live_ones() -> None:
    heap: TimerHeap[int] = TimerHeap()
    for key in range(1000):
        heap.push(key, float(key))
    for key in range(900):
        heap.remove(key)
    assert len(heap) == 100
    assert heap.stale <= len(heap) + 64
    for _ in range(10):  # re-scheduling the same keys never grows the heap unboundedly
        for key in range(900, 1000):
            heap.push(key, float(key) + 0.5)
    assert heap.stale <= len(heap) + 64
    assert drain(heap, 10_000.0) == list(range(900, 1000))


def test_count_until_counts_entries_due_by_a_time_up_to_a_limit() -> None:
    heap: TimerHeap[str] = TimerHeap()
    for number in range(500):
        heap.push(f"crowd-{number}", 100.0)
    for number in range(300):
        heap.push(f"later-{number}", 101.0 + number)
    assert heap.count_until(99.0, 10_000) == 0
    assert heap.count_until(100.0, 10_000) == 500
    assert heap.count_until(105.0, 10_000) == 505
    assert heap.count_until(100.0, 64) == 64  # stops at the limit
    assert TimerHeap[str]().count_until(100.0, 10) == 0


def test_extend_orders_a_batch_as_pushes_would() -> None:
    """A batch larger than the heap is heapified at once, a smaller one pushed in; a
    key extended again keeps only its latest time."""
    heap: TimerHeap[str] = TimerHeap()
    heap.extend([("c", 3.0), ("a", 1.0), ("b", 2.0), ("d", 2.0)])
    heap.extend([("e", 0.5), ("c", 1.5)])
    assert len(heap) == 5
    assert drain(heap, 10.0) == ["e", "a", "c", "b", "d"]
    assert heap.peek() is None
