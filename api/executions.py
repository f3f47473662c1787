"""`/api/scheduler/executions`: execution history (newest first), one execution, cancel.

`total` is the number of executions matching the filters, not the page length, so a
client can page with limit/offset.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, permissions, schemas, views
from api.limits import MAX_OFFSET
from api.openapi import documented
from api.output_stream import output_so_far
from api.validation import QueryParam, object_id, parse_query
from engine.errors import InvalidInput
from engine.model import Status

bp = Blueprint("executions", url_prefix="/api/scheduler/executions")

LIST_QUERY = (
    QueryParam("job_id", "job_id", "only this job's executions (either surface's id)"),
    QueryParam("user_id", "object_id", "only executions of this user's jobs"),
    QueryParam("status", "string", "one of: " + ", ".join(s.value for s in Status)),
    QueryParam("limit", "integer", "page size", default=100, minimum=1, maximum=1000),
    QueryParam("offset", "integer", "executions to skip", default=0, minimum=0, maximum=MAX_OFFSET),
)


def _status(text: str | None) -> Status | None:
    if text is None:
        return None
    try:
        return Status(text)
    except ValueError:
        raise InvalidInput(
            f"Unknown status {text!r} (one of: {', '.join(s.value for s in Status)})"
        ) from None


@bp.get("/")
@documented(query=LIST_QUERY, response=schemas.EXECUTIONS)
async def list_executions(request: Request) -> HTTPResponse:
    """Executions, newest first, optionally filtered by job, user and status."""
    query = parse_query(request.get_args(keep_blank_values=True), LIST_QUERY)
    filters = {
        "job_id": query.get("job_id"),
        "owner": query.get("user_id"),
        "status": _status(query.get("status")),
    }
    store = context.store(request)
    own = permissions.owner_filter(request)
    # a user sees only their own: another user's id filters to nothing, as a missing one
    hidden = own is not None and filters["owner"] not in (None, own)
    if own is not None:
        filters["owner"] = own

    def render() -> dict[str, Any]:
        page = (
            []
            if hidden
            else store.list_executions(**filters, limit=query["limit"], offset=query["offset"])
        )
        return views.success(
            "Executions retrieved successfully",
            total=0 if hidden else store.count_executions(**filters),
            limit=query["limit"],
            offset=query["offset"],
            data=[views.execution(e) for e in page],
        )

    return context.reply(await context.off_loop(request, render))


@bp.get("/<execution_id>")
@documented(response=schemas.EXECUTION)
async def get_execution(request: Request, execution_id: str) -> HTTPResponse:
    """One execution, with its output, error and return value."""
    found = await context.in_store(
        request, permissions.visible_execution, request, object_id(execution_id, "execution")
    )
    found.output = output_so_far(request, found)
    return context.reply(
        views.success("Execution retrieved successfully", data=views.execution(found))
    )


@bp.post("/<execution_id>/cancel")
@documented(response=schemas.EXECUTION_CANCELLED)
async def cancel_execution(request: Request, execution_id: str) -> HTTPResponse:
    """Cancel a queued execution at once, or stop a running one (its process group is
    killed); 409 when it has already finished."""
    scheduler = context.scheduler(request)
    permissions.check_execution(request, object_id(execution_id, "execution"))
    cancelled = await context.command(scheduler.cancel_execution(execution_id))
    message = "Execution cancelled" if cancelled.terminal else "Cancellation requested"
    return context.reply(
        views.success(message, execution_id=cancelled.id, data=views.execution(cancelled))
    )
