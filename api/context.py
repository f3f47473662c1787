"""Typed access to what the app factory puts on `app.ctx`, and the one way to await
an engine command from a handler.

Writes to job state go through the scheduler's command queue (the single writer);
reads and the service's own records go to the store, off the event loop with a bounded
wait (`in_store`, `off_loop`: api/storecalls.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sanic import Request
from sanic.response import HTTPResponse

from api.bridge import bridge_for
from api.errors import json_bytes_reply, json_reply
from api.storecalls import LIST_WAIT, bounded, call
from engine.errors import EngineBusy

if TYPE_CHECKING:
    from api.config import Settings
    from api.secrets import SecretBox
    from engine.scheduler import Scheduler
    from stores.base import Store

T = TypeVar("T")

#: an engine that has not answered a command by then is reported busy (503), not hung on
COMMAND_TIMEOUT = 30.0


def store(request: Request) -> Store:
    value: Store = request.app.ctx.store
    return value


def scheduler(request: Request) -> Scheduler:
    value: Scheduler = request.app.ctx.scheduler
    return value


def settings(request: Request) -> Settings:
    value: Settings = request.app.ctx.settings
    return value


def secrets(request: Request) -> SecretBox:
    value: SecretBox = request.app.ctx.secrets
    return value


def now(request: Request) -> datetime:
    """The engine's clock, so validation ('in the past') agrees with when jobs fire."""
    value: datetime = request.app.ctx.clock.now()
    return value


async def command(future: Future[T]) -> T:
    """Await one engine command; its CronwellError propagates to the error handler.

    Through the loop's `FutureBridge` (one wake per batch of finished commands, see
    api/bridge.py); giving up waiting never cancels the future the loop thread resolves.
    """
    loop = asyncio.get_running_loop()
    waiter = bridge_for(loop).watch(future)
    timer = loop.call_later(COMMAND_TIMEOUT, _give_up, waiter)
    try:
        return await waiter
    finally:
        timer.cancel()


def _give_up(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(EngineBusy(f"the engine did not answer within {COMMAND_TIMEOUT:g} s"))


async def off_loop(request: Request, work: Callable[[], T]) -> T:
    """Run a read whose cost grows with the data (a list, an aggregate) and its
    rendering on the app's one reader thread, so a large list never stalls every other
    connection on the event loop. One thread, not a pool: several CPU-bound readers
    would convoy the GIL against the engine's threads and make fires late (measured:
    750 ms late under 32 list clients with a pool, tens of ms with one reader). Waited
    for at most `storecalls.LIST_WAIT` seconds (then 503); every other store call goes
    through `in_store` (api/storecalls.py)."""
    reader: Executor = request.app.ctx.reader
    return await bounded(reader, LIST_WAIT, work)


#: a handler's store call, off the event loop with a bounded wait (api/storecalls.py)
in_store = call


def reply(body: Any, status: int = 200) -> HTTPResponse:
    return json_reply(body, status)


def reply_bytes(body: bytes, status: int = 200) -> HTTPResponse:
    """An answer already encoded as JSON bytes (remembered job lists)."""
    return json_bytes_reply(body, status)
