"""CommandFuture behaves as a concurrent.futures.Future for every way callers use one:
a waiter already blocked when the result arrives, callbacks, cancel, exceptions, wait /
as_completed and asyncio.wrap_future; and the fast paths keep no Condition."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError, Future, InvalidStateError, as_completed, wait

import pytest

from engine.command_future import CommandFuture


def test_result_set_before_anyone_asks_builds_no_condition() -> None:
    future: CommandFuture[int] = CommandFuture()
    assert isinstance(future, Future)
    assert not future.done() and not future.cancelled()
    future.set_result(7)
    assert future.done() and future.result() == 7
    assert not has_condition(future)  # nothing had to wait or be told
    assert future.exception() is None
    with pytest.raises(InvalidStateError):
        future.set_result(8)


def test_a_thread_already_waiting_is_woken() -> None:
    for _ in range(200):  # many rounds, so the set can land on either side of the wait
        future: CommandFuture[str] = CommandFuture()
        got: list[str] = []
        waiter = threading.Thread(target=lambda f=future, out=got: out.append(f.result(timeout=5)))
        waiter.start()
        future.set_result("done")
        waiter.join(5)
        assert got == ["done"]


def test_callbacks_run_once_whether_added_before_or_after() -> None:
    seen: list[int] = []
    future: CommandFuture[int] = CommandFuture()
    future.add_done_callback(lambda f: seen.append(f.result()))
    future.set_result(1)
    future.add_done_callback(lambda f: seen.append(f.result() + 1))
    assert seen == [1, 2]


def test_cancel_then_set_is_refused_and_result_raises() -> None:
    future: CommandFuture[int] = CommandFuture()
    assert future.cancel() and future.cancelled() and future.done()
    with pytest.raises(InvalidStateError):
        future.set_result(1)
    with pytest.raises(CancelledError):
        future.result()


def test_exception_reaches_result_and_exception() -> None:
    future: CommandFuture[int] = CommandFuture()
    future.set_exception(LookupError("gone"))
    with pytest.raises(LookupError, match="gone"):
        future.result()
    assert isinstance(future.exception(), LookupError)


def test_wait_as_completed_and_asyncio_wrap_future() -> None:
    futures: list[CommandFuture[int]] = [CommandFuture() for _ in range(3)]
    setter = threading.Timer(0.02, lambda: [f.set_result(i) for i, f in enumerate(futures)])
    setter.start()
    done, pending = wait(futures, timeout=5)
    assert len(done) == 3 and not pending
    assert sorted(f.result() for f in as_completed(futures, timeout=5)) == [0, 1, 2]

    async def awaited() -> int:
        late: CommandFuture[int] = CommandFuture()
        asyncio.get_running_loop().call_later(
            0.01, lambda: threading.Thread(target=late.set_result, args=(5,)).start()
        )
        return await asyncio.wrap_future(late)

    assert asyncio.run(awaited()) == 5


def has_condition(future: CommandFuture[object]) -> bool:
    """Whether the future built its Condition (it does so only when someone must wait)."""
    return vars(future).get("_lazy_condition") is not None


def test_cpython_future_still_keeps_the_state_command_future_replaces() -> None:
    """The trick's footing: a stock Future's __init__ sets exactly these attributes, and
    its methods read the state constants below. A Python that changes either breaks
    CommandFuture; then drop engine/command_future.py for a plain Future."""
    from concurrent.futures import _base

    stock = Future()  # type: ignore[var-annotated]
    assert set(vars(stock)) == {
        "_condition",
        "_state",
        "_result",
        "_exception",
        "_waiters",
        "_done_callbacks",
    }
    assert (stock._state, _base.PENDING, _base.FINISHED) == ("PENDING", "PENDING", "FINISHED")
    assert {_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED} == {
        "CANCELLED",
        "CANCELLED_AND_NOTIFIED",
    }
    for method in ("result", "exception", "set_result", "cancel", "add_done_callback"):
        assert "_condition" in getattr(Future, method).__code__.co_names, method
