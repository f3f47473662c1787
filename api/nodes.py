"""`GET /api/scheduler/nodes`: the cronwell processes sharing this store."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, schemas, views
from api.openapi import documented

bp = Blueprint("nodes", url_prefix="/api/scheduler")


@bp.get("/nodes")
@documented(response=schemas.NODES)
async def list_nodes(request: Request) -> HTTPResponse:
    """Every registered node, oldest start first: alive while its lease is renewed."""
    store = context.store(request)
    nodes = await context.off_loop(request, store.list_nodes)
    now = context.now(request)
    this = request.app.ctx.scheduler.node_id if request.app.ctx.scheduler else None
    listed = [views.node(n, now, this) for n in nodes]
    return context.reply(
        views.success("Nodes retrieved successfully", total=len(listed), nodes=listed)
    )
