"""A running execution's output as it is produced.

`GET /api/scheduler/executions/{id}` shows the output so far while the execution runs
(`output_so_far`); `GET /api/scheduler/executions/{id}/stream` sends it as Server-Sent
Events:

    event: output   data: {"text": "...", "stream": "stdout"}   id: <bytes sent so far>
    event: end      data: {"status": "completed", "exit_code": 0, "error": "", ...}

stdout and stderr come interleaved, in the order the job wrote them, each message
saying which stream its text came from (`stdout` or `stderr`; the stored output, once
the run ends, has stdout first and stderr under a `[stderr]` line). Output sent after
the run ended (the stored record's, a note about dropped bytes) says `stdout`. The cap holds
while it runs: past CRONWELL_OUTPUT_CAP bytes nothing more is kept or sent, and the
stream says how much was dropped. A stream opened on a queued execution waits for it
to start; one opened on a finished execution sends the stored output and the end at
once. `Last-Event-ID` (an id of an output message) resumes a running stream after the
bytes already received.

The running output lives in the engine's `LiveOutput` of the execution; the stream
reads it every POLL seconds (a byte-offset check, nothing when nothing new came), so
a line reaches the client within POLL of being printed.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from typing import Any

from sanic import Blueprint, Request
from sanic.response.types import HTTPResponse

from api import context, permissions, schemas, sse
from api.event_hub import frame
from api.openapi import documented
from api.validation import object_id
from engine.interfaces import STDERR, STDOUT
from engine.model import Execution
from engine.running.live import LiveOutput

bp = Blueprint("output_stream", url_prefix="/api/scheduler/executions")

STREAMS = (STDOUT, STDERR)
#: seconds between checks for new output (and for the run's start or recorded end)
POLL = 0.1


def dropped_note(live: LiveOutput) -> str:
    return f"[cronwell: {live.dropped} more bytes of output dropped; the cap is {live.cap} bytes]\n"


def output_so_far(request: Request, execution: Execution) -> str:
    """The stored output, plus what a running execution has printed so far."""
    if execution.terminal:
        return execution.output
    scheduler = context.scheduler(request)
    live = scheduler.live_output(execution.id) if scheduler is not None else None
    if live is None:
        return execution.output
    text = live.read().decode("utf-8", errors="replace")
    if live.dropped:
        text += dropped_note(live)
    return execution.output + text


def _end(execution: Execution) -> dict[str, Any]:
    return {
        "status": str(execution.status),
        "exit_code": execution.exit_code,
        "error": execution.error,
        "return_value": execution.return_value,
        "duration_seconds": execution.duration_seconds,
    }


def _offset(last_id: str | None) -> int:
    return int(last_id) if last_id and last_id.strip().isdigit() else 0


@bp.get("/<execution_id>/stream")
@documented(response=schemas.EVENT_STREAM, media_type="text/event-stream")
async def stream_output(request: Request, execution_id: str) -> HTTPResponse | None:
    """The execution's output as Server-Sent Events while it runs, then its end."""
    wanted = object_id(execution_id, "execution")
    store = context.store(request)
    # 404 before the stream opens, for a missing execution or another user's
    execution = await context.in_store(request, permissions.visible_execution, request, wanted)
    scheduler = context.scheduler(request)
    heartbeat = sse.heartbeat_interval(request)
    sent = _offset(request.headers.get("Last-Event-ID"))
    response = await sse.open_stream(request)
    live: LiveOutput | None = None
    # one decoder per stream: a character split across two writes of one stream may
    # have the other stream's bytes between its halves
    decoders = {name: codecs.getincrementaldecoder("utf-8")(errors="replace") for name in STREAMS}
    quiet_since = time.monotonic()
    while True:
        if live is None and not execution.terminal:
            live = scheduler.live_output(wanted) if scheduler is not None else None
        if live is not None:
            parts = live.read_parts(sent)
            if parts:
                for stream, data in parts:
                    sent += len(data)
                    text = decoders[stream].decode(data)
                    if text:
                        body = {"text": text, "stream": stream}
                        await response.send(frame(str(sent), "output", body))
                quiet_since = time.monotonic()
                continue
            if not live.finished:
                quiet_since = await _pause(response, quiet_since, heartbeat)
                continue
        if live is None or live.finished:
            execution = store.get_execution(wanted)
            if execution.terminal:
                break
        quiet_since = await _pause(response, quiet_since, heartbeat)
    tail = "".join(decoders[name].decode(b"", final=True) for name in STREAMS)
    if live is None and execution.output and not sent:  # it ended before we looked
        tail += execution.output
    elif live is not None and live.dropped:
        tail += dropped_note(live)
    if tail:
        await response.send(frame(str(sent), "output", {"text": tail, "stream": STDOUT}))
    await response.send(frame(None, "end", _end(execution)))
    await response.send(end_stream=True)
    return None


async def _pause(response: Any, quiet_since: float, heartbeat: float) -> float:
    """Wait one POLL; send a heartbeat after `heartbeat` quiet seconds."""
    await asyncio.sleep(POLL)
    if time.monotonic() - quiet_since >= heartbeat:
        await response.send(sse.HEARTBEAT)
        return time.monotonic()
    return quiet_since
