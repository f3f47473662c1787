"""The dashboard's pages of users (with their API keys) and servers.

What each lists is what the API answers the viewer: an admin sees every user and
server, a user themself, their own keys and their own servers (`GET /api/users/`,
`GET /api/users/<id>/keys`, `GET /api/servers/`). Creating a user, a key or a server,
revoking a key, deleting a user or a server are calls from ui.js to those endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, keys, permissions, views
from api.ui.render import page
from api.ui.viewer import Viewer, ui_page
from stores.base import Store

bp = Blueprint("ui_people", strict_slashes=True)


@dataclass(slots=True)
class UserRow:
    user: dict[str, Any]  # views.user
    jobs: int
    keys: list[dict[str, Any]]  # api.keys.key_view, never the key


def user_rows(store: Store, scope: str | None) -> list[UserRow]:
    users = store.list_users() if scope is None else [store.get_user(scope)]
    by_user: dict[str, list[dict[str, Any]]] = {}
    for key in store.list_api_keys(scope):
        by_user.setdefault(key.user_id, []).append(keys.key_view(key))
    return [
        UserRow(views.user(u), store.count_jobs(u.id).total, by_user.get(u.id, [])) for u in users
    ]


@bp.get("/ui/users")
@ui_page
async def users_page(request: Request, viewer: Viewer) -> HTTPResponse:
    store = context.store(request)
    scope = permissions.owner_filter(request)
    listed = await context.off_loop(request, lambda: user_rows(store, scope))
    return page(request, "users.html", viewer=viewer, nav="users", users=listed)


@bp.get("/ui/servers")
@ui_page
async def servers_page(request: Request, viewer: Viewer) -> HTTPResponse:
    store = context.store(request)
    scope = permissions.owner_filter(request)

    def read() -> tuple[list[dict[str, Any]], dict[str, str], list[dict[str, Any]]]:
        servers = [views.server(s) for s in store.list_servers(scope)]
        users = store.list_users() if scope is None else [store.get_user(scope)]
        return servers, {u.id: u.name for u in users}, [views.user(u) for u in users]

    servers, names, users = await context.off_loop(request, read)
    return page(
        request,
        "servers.html",
        viewer=viewer,
        nav="servers",
        servers=servers,
        names=names,
        users=users,
    )
