"""The record encoding every real backend shares (stores/codec.py)."""

from __future__ import annotations

import gc
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from engine.gcpause import BULK_ITEMS, paused_gc
from stores.codec import dumps, plain, text_time, time_text


def test_time_text_is_fixed_width_and_sorts_like_time() -> None:
    moments = [
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=14))),  # 2025-12-31 10:00 UTC
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ]
    texts = [time_text(m) for m in moments]
    assert {len(t) for t in texts if t} == {27}
    assert sorted(texts) == [time_text(m) for m in sorted(moments)]  # type: ignore[type-var]
    for moment, text in zip(moments, texts, strict=True):
        back = text_time(text)
        assert back == moment and back is not None and back.tzinfo is UTC
    assert time_text(None) is None and text_time(None) is None


def test_naive_datetimes_are_taken_as_utc() -> None:
    assert time_text(datetime(2026, 5, 6, 7, 8, 9)) == "2026-05-06T07:08:09.000000Z"


def test_values_json_cannot_hold_become_text() -> None:
    record = {"when": datetime(2026, 1, 1, tzinfo=UTC), "amount": Decimal("1.10"), "pair": (1, 2)}
    assert plain(record) == {
        "when": "2026-01-01T00:00:00.000000Z",
        "amount": "1.10",
        "pair": [1, 2],
    }
    assert dumps({"a": 1}) == '{"a":1}'


def test_paused_gc_pauses_the_collector_only_for_big_batches() -> None:
    assert gc.isenabled()
    with paused_gc(BULK_ITEMS - 1):
        assert gc.isenabled()
    with paused_gc(BULK_ITEMS):
        assert not gc.isenabled()
        with paused_gc(BULK_ITEMS * 10):  # nested
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_gc_restores_the_collector_after_errors_and_across_threads() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with paused_gc(BULK_ITEMS):
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    try:
        with paused_gc(BULK_ITEMS):
            raise ValueError("decode failed")
    except ValueError:
        pass
    assert not gc.isenabled()  # the other thread is still decoding
    release.set()
    thread.join()
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_program_stays_off() -> None:
    gc.disable()
    try:
        with paused_gc(BULK_ITEMS):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_freezing_takes_what_lives_out_of_the_collectors_passes() -> None:
    from engine.gcpause import freeze_what_lives

    before = object.__new__(type("Lived", (), {}))  # a tracked object made before
    try:
        frozen = freeze_what_lives()
        # objects freed since (by refcount) leave the permanent generation; none join it
        assert frozen >= 1 and 0 < gc.get_freeze_count() <= frozen
        assert not any(o is before for o in gc.get_objects())  # no pass traverses it
        after = type("Later", (), {})()
        assert any(o is after for o in gc.get_objects(generation=0))
    finally:
        gc.unfreeze()
    assert any(o is before for o in gc.get_objects())
