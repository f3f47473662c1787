"""The dashboard's pages of the nodes sharing the store and of the audit trail.

Nodes are listed to every viewer, as `GET /api/scheduler/nodes` is; the audit trail
to admins only, as `GET /api/audit` (403 for a user, refused by the same check).
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, permissions, views
from api.audit import AuditTrail, entry_view
from api.ui.render import page
from api.ui.routes import whole
from api.ui.viewer import Viewer, ui_page
from api.validation import object_id

bp = Blueprint("ui_system", strict_slashes=True)

AUDIT_PER_PAGE = 100


@bp.get("/ui/nodes")
@ui_page
async def nodes_page(request: Request, viewer: Viewer) -> HTTPResponse:
    store = context.store(request)
    found = await context.off_loop(request, store.list_nodes)
    now = context.now(request)
    scheduler = request.app.ctx.scheduler
    this = scheduler.node_id if scheduler is not None else None
    nodes = [views.node(n, now, this) for n in found]
    return page(request, "nodes.html", viewer=viewer, nav="nodes", nodes=nodes)


@bp.get("/ui/audit")
@ui_page
async def audit_page(request: Request, viewer: Viewer) -> HTTPResponse:
    permissions.require_admin(request, "read the audit trail")
    user_id = request.args.get("user") or None
    if user_id is not None:
        object_id(user_id, "user")
    offset = whole(request, "offset", 0)
    trail: AuditTrail = request.app.ctx.audit
    store = context.store(request)

    def read() -> tuple[list[dict[str, Any]], int, dict[str, str]]:
        trail.flush()
        entries = store.list_audit_entries(user_id=user_id, limit=AUDIT_PER_PAGE, offset=offset)
        total = store.count_audit_entries(user_id=user_id)
        return [entry_view(e) for e in entries], total, {u.id: u.name for u in store.list_users()}

    entries, total, names = await context.off_loop(request, read)
    return page(
        request,
        "audit.html",
        viewer=viewer,
        nav="audit",
        entries=entries,
        total=total,
        offset=offset,
        per_page=AUDIT_PER_PAGE,
        user_id=user_id,
        names=names,
    )
