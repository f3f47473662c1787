"""`GET /api/scheduler/events`: Server-Sent Events of job and execution changes.

    curl -N http://127.0.0.1:5000/api/scheduler/events?job_id=...

Each message has an `id:`, an `event:` name (job_added, job_modified, job_paused,
job_resumed, job_removed; execution_queued, execution_running, execution_completed,
execution_failed, execution_timeout, execution_cancelled, execution_missed,
execution_skipped) and one line of JSON `data:` (the job or execution as the API shows
it; an execution's output is left out: read it at /executions/{id} or its /stream).

Filters: `job_id`, `user_id`. Resume: send the last id seen as `Last-Event-ID` (what
EventSource does by itself on reconnecting) or `?last_event_id=`; every kept event after
it comes first. The last `CRONWELL_EVENTS_WINDOW` events are kept, of those some client
watches (every job's while a client without a job filter is connected, else the watched
jobs') and, for two minutes after a client leaves, of what it watched: an id older than
that, from a stretch when nobody watched, or from before a restart gets an `event: gap`
first, then everything kept (api/event_hub.py). A comment
line every `CRONWELL_SSE_HEARTBEAT` seconds keeps proxies from closing a quiet stream. A
client more than `CRONWELL_EVENTS_CLIENT_QUEUE` events behind is dropped with a final
`event: dropped` (the engine never waits for a client).
"""

from __future__ import annotations

import asyncio

from sanic import Blueprint, Request
from sanic.response.types import HTTPResponse

from api import permissions, schemas, sse
from api.event_hub import EventHub, Subscriber, frame
from api.openapi import documented
from api.validation import QueryParam, parse_query
from engine.errors import UserNotFound

bp = Blueprint("events_stream", url_prefix="/api/scheduler")

STREAM_QUERY = (
    QueryParam("job_id", "job_id", "only this job's events (either surface's id)"),
    QueryParam("user_id", "object_id", "only events of this user's jobs"),
    QueryParam("last_event_id", "string", "resume after this id (as the Last-Event-ID header)"),
)


@bp.get("/events")
@documented(query=STREAM_QUERY, response=schemas.EVENT_STREAM, media_type="text/event-stream")
async def stream_events(request: Request) -> HTTPResponse | None:
    """Job and execution changes as Server-Sent Events (see the module docstring)."""
    query = parse_query(request.get_args(keep_blank_values=True), STREAM_QUERY)
    last_id = request.headers.get("Last-Event-ID") or query.get("last_event_id")
    hub: EventHub = request.app.ctx.event_hub
    heartbeat = sse.heartbeat_interval(request)
    user_id = query.get("user_id")
    who = permissions.principal(request)
    if not who.admin:  # a user hears only their own jobs and runs, as every other read
        if user_id is not None and user_id != who.user_id:
            raise UserNotFound(user_id)  # another user's stream answers as a missing one
        user_id = who.user_id
    subscriber, gap = hub.subscribe(query.get("job_id"), user_id, last_id)
    subscriber.task = asyncio.current_task()
    try:
        response = await sse.open_stream(request)
        if gap is not None:
            note = {"last_event_id": gap.after, "oldest_kept": gap.oldest}
            await response.send(frame(None, "gap", note))
        while True:
            batch = await subscriber.take(heartbeat)
            if subscriber.dropped:
                break
            if subscriber.closed and not batch:
                await response.send(end_stream=True)
                return None
            subscriber.sending = True
            await response.send(b"".join(batch) if batch else sse.HEARTBEAT)
            subscriber.sending = False
    except asyncio.CancelledError:
        if not subscriber.dropped:
            raise  # the client went away, or the server is stopping
    finally:
        hub.unsubscribe(subscriber)
    sse.abandon(request, _dropped(hub, subscriber))
    return None


def _dropped(hub: EventHub, subscriber: Subscriber) -> bytes:
    reason = (
        f"this client fell more than {subscriber.limit} events behind; reconnect with "
        "Last-Event-ID to resume"
    )
    return frame(None, "dropped", {"reason": reason, "oldest_kept": hub.oldest_id()})
