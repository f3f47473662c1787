"""Server-Sent Events plumbing shared by the event stream and the output stream.

`open_stream` starts a `text/event-stream` response that proxies must not buffer or
cache; `heartbeat_interval` is how often a quiet stream sends a comment line (Sanic
ends a response that sent nothing for RESPONSE_TIMEOUT, 60 s by default). `abandon` ends a stream whose client stopped reading: Sanic's `send` waits for
the socket to drain first, which never happens, so the final message (and the end of
the chunked body) go straight into the transport's buffer, the connection is closed,
and Sanic aborts it if the client has not read them within its close grace
(GRACEFUL_TCP_CLOSE_TIMEOUT, 5 s by default).
"""

from __future__ import annotations

import asyncio
from typing import cast

from sanic import Request
from sanic.response.types import HTTPResponse

HEARTBEAT = b": heartbeat\n\n"
#: what EventSource waits before reconnecting after the stream ends (milliseconds)
RETRY_MS = 2000
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each message on at once
}


def heartbeat_interval(request: Request) -> float:
    """Seconds between heartbeats: CRONWELL_SSE_HEARTBEAT, but at most half of Sanic's
    RESPONSE_TIMEOUT, which cancels a stream that sent nothing for that long."""
    configured: float = request.app.ctx.settings.sse_heartbeat
    return min(configured, float(request.app.config.RESPONSE_TIMEOUT) / 2)


async def open_stream(request: Request) -> HTTPResponse:
    """The started response; its `send` writes one chunk, `eof` ends the body."""
    response = cast(
        HTTPResponse,
        await request.respond(headers=HEADERS, content_type="text/event-stream; charset=utf-8"),
    )
    await response.send(f"retry: {RETRY_MS}\n\n".encode())
    return response


def abandon(request: Request, final: bytes) -> None:
    """Write `final` without waiting for the client, end the body, close the socket."""
    transport = cast(asyncio.WriteTransport | None, request.transport)
    if transport is None or transport.is_closing():
        return
    if request.version == "1.1":  # Sanic streams HTTP/1.1 bodies chunked
        transport.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(final), final))
    else:
        transport.write(final)
    protocol = getattr(request, "protocol", None) or getattr(request.stream, "protocol", None)
    close = getattr(protocol, "close", None)
    if close is not None:
        close()  # Sanic's close: aborts after its grace if the buffer never drains
    else:
        transport.close()
