"""Sanic's HTTP/1.1 protocol with three guards against slow and greedy clients.

- **A whole-request deadline.** Sanic's `REQUEST_TIMEOUT` measures the gap since the
  last byte, so a client trickling one byte every few seconds holds a connection
  forever. Here each request must arrive whole, head and body, within
  `request_deadline` seconds of its first byte, or it is answered 408 and the
  connection closed.
- **A cap on the connections one client address holds open** (`max_client_connections`,
  0 = none). A connection over it is answered 429 at once and closed, so no client can
  take every socket the process has.
- **Answers a client can read before a close.** When the service answers before it
  has read the whole body (413 for a body over the limit, the 429 above), closing the
  socket at once with unread data makes the kernel send a reset, and a client that
  writes its whole body before reading (Python's urllib) never sees the answer. Here
  the connection half-closes instead: the answer is followed by FIN, what the client
  still sends is read and dropped for up to LINGER_SECONDS (or LINGER_BYTES), then the
  socket is closed.

`cronwell serve` and the test servers pass `protocol=GuardedProtocol` to Sanic; the
limits come from the app (`create_app` puts them on `app.ctx`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from sanic.exceptions import RequestTimeout
from sanic.http import Http, Stage
from sanic.server.protocols.http_protocol import HttpProtocol

#: how long, and how many bytes, a half-closed connection is drained before it closes
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024 * 1024


class GuardedHttp(Http):
    """Sanic's HTTP/1.1 state machine, telling its protocol when each request begins."""

    def init_for_request(self) -> None:
        super().init_for_request()  # type: ignore[no-untyped-call]
        protocol = self.protocol
        if isinstance(protocol, GuardedProtocol):
            protocol.request_begins(bool(self.recv_buffer))


class GuardedProtocol(HttpProtocol):
    HTTP_CLASS = GuardedHttp
    # Sanic's protocol classes have no instance dict: every attribute is a slot
    __slots__ = (
        "_client",
        "_client_cap",
        "_clients",
        "_deadline",
        "_deadline_timer",
        "_give_way",
        "_last_http",
        "_linger_timer",
        "_lingered",
        "_receiving",
        "_request_started",
        "_timed_out",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ctx = self.app.ctx
        self._deadline: float = getattr(ctx, "request_deadline", 0.0)
        self._client_cap: int = getattr(ctx, "max_client_connections", 0)
        #: waits for a fire's start due within the next moments (api/give_way.py)
        self._give_way: Callable[[], None] | None = getattr(ctx, "give_way", None)
        clients = getattr(ctx, "client_connections", None)
        self._clients: Counter[str] = clients if isinstance(clients, Counter) else Counter()
        self._client: str | None = None
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._request_started = 0.0
        self._receiving = False
        self._timed_out = False
        self._last_http: GuardedHttp | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._lingered: int | None = None  # bytes drained since the half-close

    # -- connections per client address ------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = peer[0] if isinstance(peer, tuple) and peer else None
        if client is not None and self._client_cap and self._clients[client] >= self._client_cap:
            stream = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
            self.transport = stream
            stream.write(_too_many_connections(self._client_cap))
            self._half_close()
            return
        if client is not None:
            self._clients[client] += 1
            self._client = client
        super().connection_made(transport)  # type: ignore[no-untyped-call]

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._client is not None:
            self._clients[self._client] -= 1
            if self._clients[self._client] <= 0:
                del self._clients[self._client]
            self._client = None
        if self.conn_info is None:  # refused in connection_made: Sanic never saw it
            self.transport = None
            return
        super().connection_lost(exc)  # type: ignore[no-untyped-call]

    # -- the whole-request deadline ----------------------------------------------------
    def _setup_connection(self, *args: Any, **kwargs: Any) -> None:
        super()._setup_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._last_http = self._http

    def request_begins(self, bytes_waiting: bool) -> None:
        """A new request on this connection: its clock starts now if its first bytes
        are already here (pipelined), else when they arrive."""
        self._receiving = False
        if bytes_waiting:
            self._start_clock()

    def _start_clock(self) -> None:
        """The first byte of a request. No timer per request (a heap push and a cancel
        each, 10% of a small request's cost): one timer per connection is armed when
        none is pending, and re-armed from where it fires for a request still due."""
        self._receiving = True
        self._request_started = self.loop.time()
        if self._deadline > 0 and self._deadline_timer is None:
            self._deadline_timer = self.loop.call_at(
                self._request_started + self._deadline, self._deadline_passed
            )

    def data_received(self, data: bytes) -> None:
        if self._lingered is not None:  # half-closed: drop what still comes
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self._stop_lingering()
            return
        if self._give_way is not None:
            self._give_way()
        if not self._receiving:
            self._start_clock()
        super().data_received(data)

    def _deadline_passed(self) -> None:
        self._deadline_timer = None
        http = self._http
        if http is None or self._task is None or not self._receiving:
            return
        receiving = http.stage is Stage.REQUEST or (
            http.stage is Stage.HANDLER and http.request_body
        )
        if not receiving:
            return  # arrived whole: the next request's first byte arms the timer again
        due = self._request_started + self._deadline
        if self.loop.time() < due:  # a later request than the one the timer was for
            self._deadline_timer = self.loop.call_at(due, self._deadline_passed)
            return
        self._timed_out = True
        http.exception = RequestTimeout(f"Request not received in full within {self._deadline:g} s")
        # after the 408 Sanic would wait to drain the rest of the body: not for a
        # client that has had its time
        http.request_body = None
        self._task.cancel()

    # -- closing without a reset -------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        if self._should_linger():
            self._half_close()
            return
        super().close(timeout)

    def _should_linger(self) -> bool:
        """The answer was written before the client's request was read: its body (a
        413, say), or the rest of a request that missed its deadline (the 408). Closing
        with the client's bytes unread would send a reset that can destroy the answer
        before the client reads it; a bounded drain lets it arrive."""
        http = self._last_http
        transport = self.transport
        return bool(
            http is not None
            and (http.request_body or self._timed_out)
            and http.response is not None
            and self._lingered is None
            and transport is not None
            and not transport.is_closing()
        )

    def _half_close(self) -> None:
        transport = self.transport
        self._lingered = 0
        self._cancel_timers()
        if transport is None:
            return
        try:
            if transport.can_write_eof():
                transport.write_eof()
            transport.resume_reading()
        except (OSError, RuntimeError, NotImplementedError):
            transport.close()
            return
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self._stop_lingering)

    def _stop_lingering(self) -> None:
        self._linger_timer = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._deadline_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._deadline_timer = self._linger_timer = None
        callback = getattr(self, "_callback_check_timeouts", None)
        if callback is not None:
            callback.cancel()


def _too_many_connections(cap: int) -> bytes:
    body = json.dumps(
        {"error": f"Too many open connections from this address (at most {cap})"}
    ).encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "retry-after: 1\r\n"
        "connection: close\r\n"
        f"date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}\r\n\r\n"
    )
    return head.encode() + body
