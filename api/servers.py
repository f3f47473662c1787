"""`/api/servers`: servers a user owns (create, list, get, by user, update, delete).

Passwords are encrypted with the service's Fernet key before they reach the store
and are never returned (responses say only `has_password`).
"""

from __future__ import annotations

import re
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, permissions, schemas, views
from api.openapi import documented, links_to
from api.validation import Body, Field, object_id
from engine.errors import InvalidField, InvalidInput
from engine.ids import is_object_id, new_id
from stores.records import Server

bp = Blueprint("servers", url_prefix="/api/servers")

SERVER_LINKS = links_to(
    "/server_id",
    "server_id",
    "servers.get_server.get",
    "servers.update_server.put",
    "servers.delete_server.delete",
)

HOSTNAME = re.compile(r"^[A-Za-z0-9_.:\[\]-]{1,253}$")

_FIELDS = (
    ("user_id", "string", "507f1f77bcf86cd799439011"),
    ("name", "string", "Production Server"),
    ("hostname", "string", "prod.example.com"),
    ("port", "integer", 8080),
    ("status", "string", "running"),
    ("connection_name", "string", "ServiceNow Connection"),
    ("instance_url", "string", "https://dev123456.service-now.com"),
    ("username", "string", "admin"),
    ("password", "string", "password123"),
)
_REQUIRED = {"user_id", "name", "hostname", "port"}
_MAY_BE_EMPTY = {"connection_name", "instance_url", "username", "password"}

SERVER_BODY = Body(
    tuple(
        Field(
            name,
            kind,
            required=name in _REQUIRED,
            example=example,
            allow_empty=name in _MAY_BE_EMPTY,
            minimum=1 if name == "port" else None,
            maximum=65535 if name == "port" else None,
            description="stored encrypted, never returned" if name == "password" else "",
        )
        for name, kind, example in _FIELDS
    )
)


def _check(values: dict[str, Any]) -> dict[str, Any]:
    """Value rules beyond JSON types: id shape, hostname characters, URL scheme."""
    if "user_id" in values and not is_object_id(values["user_id"]):
        raise InvalidInput(
            f"Invalid user id: {values['user_id']!r} (expected 24 hexadecimal characters)"
        )
    if "hostname" in values:
        values["hostname"] = values["hostname"].strip()
        if not HOSTNAME.match(values["hostname"]):
            raise InvalidField(
                "hostname", f"hostname is not a valid host name: {values['hostname']!r}"
            )
    url = values.get("instance_url")
    if url and not url.startswith(("http://", "https://")):
        raise InvalidField("instance_url", "instance_url must start with http:// or https://")
    return values


def _apply(request: Request, server: Server, values: dict[str, Any]) -> None:
    for name in (
        "user_id",
        "name",
        "hostname",
        "port",
        "status",
        "connection_name",
        "instance_url",
        "username",
    ):
        if name in values:
            setattr(
                server,
                name,
                values[name].strip() if isinstance(values[name], str) else values[name],
            )
    if "password" in values:
        plain = values["password"]
        server.password_encrypted = context.secrets(request).encrypt(plain) if plain else ""


@bp.post("/create")
@documented(body=SERVER_BODY, response=schemas.SERVER_ID, links=SERVER_LINKS)
async def create_server(request: Request) -> HTTPResponse:
    """Create a server for an existing user."""
    values = _check(SERVER_BODY.parse(request.body))
    store = context.store(request)
    permissions.check_assignable(request, values["user_id"], "create a server")
    await context.in_store(request, store.get_user, values["user_id"])
    now = context.now(request)
    server = Server(
        id=new_id(), user_id="", name="", hostname="", port=0, created_at=now, updated_at=now
    )
    _apply(request, server, values)
    await context.in_store(request, store.add_server, server)
    return context.reply(
        views.success(f"Server {server.name} created successfully", server_id=server.id)
    )


@bp.get("/")
@documented(response=schemas.SERVERS)
async def list_servers(request: Request) -> HTTPResponse:
    """Every server the key may see, oldest first."""
    store = context.store(request)
    owner = permissions.owner_filter(request)
    return _listing(await context.in_store(request, store.list_servers, owner))


@bp.get("/user/<user_id>")
@documented(response=schemas.SERVERS)
async def servers_of_user(request: Request, user_id: str) -> HTTPResponse:
    """The servers of one (existing) user."""
    store = context.store(request)
    await context.in_store(request, permissions.visible_user, request, object_id(user_id, "user"))
    return _listing(await context.in_store(request, store.list_servers, user_id))


def _listing(servers: list[Server]) -> HTTPResponse:
    return context.reply(
        views.success(
            "Servers retrieved successfully",
            total=len(servers),
            data=[views.server(s) for s in servers],
        )
    )


@bp.get("/<server_id>")
@documented(response=schemas.SERVER)
async def get_server(request: Request, server_id: str) -> HTTPResponse:
    """One server (without its password)."""
    found = await context.in_store(
        request, permissions.visible_server, request, object_id(server_id, "server")
    )
    return context.reply(views.success("Server retrieved successfully", data=views.server(found)))


@bp.put("/<server_id>")
@documented(body=SERVER_BODY, partial=True, response=schemas.SERVER_ID)
async def update_server(request: Request, server_id: str) -> HTTPResponse:
    """Change any fields of a server; an empty password removes the stored one."""
    store = context.store(request)
    found = await context.in_store(
        request, permissions.visible_server, request, object_id(server_id, "server")
    )
    values = _check(SERVER_BODY.parse(request.body, partial=True))
    if "user_id" in values:
        permissions.check_assignable(request, values["user_id"], "move a server")
        await context.in_store(request, store.get_user, values["user_id"])
    _apply(request, found, values)
    found.updated_at = context.now(request)
    await context.in_store(request, store.update_server, found)
    return context.reply(views.success("Server updated successfully", server_id=found.id))


@bp.delete("/<server_id>")
@documented(response=schemas.SERVER_ID)
async def delete_server(request: Request, server_id: str) -> HTTPResponse:
    """Delete a server."""
    await context.in_store(
        request, permissions.visible_server, request, object_id(server_id, "server")
    )
    store = context.store(request)
    await context.in_store(request, store.delete_server, server_id)
    return context.reply(views.success("Server deleted successfully", server_id=server_id))
