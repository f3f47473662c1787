"""CancelFlag: an Event's methods for runners, and `sleep`, the worker's wait for an
armed fire's due time, which a cancel from another thread cuts short."""

from __future__ import annotations

import threading
import time

from engine.running.cancel import CancelFlag


def test_sleep_runs_its_time_out_when_nobody_cancels() -> None:
    flag = CancelFlag()
    began = time.monotonic()
    assert flag.sleep(0.05) is False
    assert time.monotonic() - began >= 0.045
    assert not flag.is_set()


def test_a_cancel_from_another_thread_ends_the_sleep_at_once() -> None:
    flag = CancelFlag()
    result: list[bool] = []
    sleeper = threading.Thread(target=lambda: result.append(flag.sleep(30)))
    sleeper.start()
    time.sleep(0.02)  # let it block
    began = time.monotonic()
    flag.set()
    sleeper.join(5)
    assert result == [True] and time.monotonic() - began < 1
    flag.set()  # a second cancel is harmless
    assert flag.is_set() and flag.wait(0)


def test_a_cancel_before_the_sleep_returns_at_once() -> None:
    flag = CancelFlag()
    flag.set()
    began = time.monotonic()
    assert flag.sleep(30) is True
    assert time.monotonic() - began < 1


def test_event_methods() -> None:
    flag = CancelFlag()
    assert not flag.is_set() and flag.wait(0.01) is False
    waiter_saw: list[bool] = []
    waiter = threading.Thread(target=lambda: waiter_saw.append(flag.wait(30)))
    waiter.start()
    time.sleep(0.02)
    flag.set()
    waiter.join(5)
    assert waiter_saw == [True]
    flag.clear()
    assert not flag.is_set() and flag.wait(0) is False
