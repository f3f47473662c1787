"""Store calls made by request handlers: off the event loop, with a bounded wait.

A store that is slow, locked by another process (SQLite's write lock) or away must not
freeze the server: a handler that called it inline stalled every connection, health
included, for the store's whole busy timeout (5 s on SQLite) and then answered 500.
Here every handler's store call runs on a small pool of threads (`POOL_SIZE`), and the
handler waits at most `STORE_WAIT` seconds for it; a call that has not answered by
then is answered `StoreBusy`, which api/errors.py turns into a 503 with `Retry-After`
in the surface's envelope. Lists and aggregates, whose cost grows with the data, keep
their one reader thread (`context.off_loop`), with the longer `LIST_WAIT`; a list whose
remembered answer still holds is answered on the loop after one counter read through a
connection that never waits (api/list_answers.py).

Nothing accepted is lost: a request answers 2xx only after its write returned, i.e.
committed. A call still waiting in the pool when its wait runs out never starts (it is
cancelled, and checks its deadline before it touches the store), so a 503 for it means
"not written". A call that had already started, waiting on the store's own lock, may
still land after its 503; the message says the outcome is unknown, as a timed-out
request's always is.

Health (`store_health`) never waits behind these calls: one probe at a time runs on its
own thread, and a health request waits for it at most `HEALTH_WAIT` seconds after it
began, then reports the store `degraded` and answers anyway (at once while a probe
stays stuck).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from sanic import Request, Sanic

from engine.errors import NotFound, StoreBusy

P = ParamSpec("P")
T = TypeVar("T")

#: threads running handlers' store calls (SQLite serialises them anyway; a few let a
#: read pass a write that waits on another process's lock in a store with many
#: connections)
POOL_SIZE = 4
#: seconds a handler waits for one store call before answering 503
STORE_WAIT = 1.5
#: seconds a handler waits for a list or an aggregate (they grow with the data)
LIST_WAIT = 10.0
#: what a 503 for a busy store tells the client to wait, in seconds
RETRY_AFTER = 2
#: seconds a health request waits for the store probe before reporting it degraded
HEALTH_WAIT = 0.5
#: an id no record has: the probe is a point read that answers "not found"
PROBE_ID = "000000000000000000000000"


def open_pools(app: Sanic[Any, Any]) -> None:
    app.ctx.store_calls = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="cronwell-store")
    app.ctx.store_prober = ThreadPoolExecutor(1, thread_name_prefix="cronwell-store-probe")
    app.ctx.store_probe = None
    app.ctx.store_probe_began = 0.0


def close_pools(app: Sanic[Any, Any]) -> None:
    """Stop taking calls; calls stuck on the store are not waited for."""
    for name in ("store_calls", "store_prober"):
        pool: Executor | None = getattr(app.ctx, name, None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def busy(wait: float) -> StoreBusy:
    return StoreBusy(
        f"the store did not answer within {wait:g} s (locked, slow or away); "
        f"a write may or may not have been applied: try again in {RETRY_AFTER} s",
        retry_after=RETRY_AFTER,
    )


async def bounded(pool: Executor, wait: float, fn: Callable[[], T]) -> T:
    """`fn()` on `pool`, waited for at most `wait` seconds (then StoreBusy)."""
    deadline = time.monotonic() + wait

    def guarded() -> T:
        if time.monotonic() > deadline:  # waited in the pool past its answer: never run
            raise busy(wait)
        return fn()

    future = asyncio.get_running_loop().run_in_executor(pool, guarded)
    try:
        return await asyncio.wait_for(future, wait)
    except TimeoutError:
        raise busy(wait) from None


async def call(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, a store call, off the event loop with a bounded wait; its
    own errors (NotFound, Conflict, StoreError) propagate as if it ran inline."""
    pool: Executor = request.app.ctx.store_calls
    return await bounded(pool, STORE_WAIT, lambda: fn(*args, **kwargs))


def _probe(store: Any) -> bool:
    try:
        store.get_user(PROBE_ID)
    except NotFound:
        pass
    return True


async def store_health(request: Request) -> str:
    """ "ok" when the store answered a point read within HEALTH_WAIT, else "degraded"."""
    ctx = request.app.ctx
    probe: Future[bool] | None = ctx.store_probe
    now = time.monotonic()
    if probe is None or probe.done():
        probe = ctx.store_probe = ctx.store_prober.submit(_probe, ctx.store)
        ctx.store_probe_began = now
    wait = ctx.store_probe_began + HEALTH_WAIT - now
    if wait <= 0:  # a probe has been stuck for a while already: no need to wait again
        return "degraded"
    try:
        await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(probe)), wait)
    except Exception:  # timed out, or the store raised
        return "degraded"
    return "ok"
