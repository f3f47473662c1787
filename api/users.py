"""`/api/users`: users of the scheduler surface (both `/api/users` and `/api/users/`).

Deleting a user removes their jobs through the engine first (so none fires again),
then their servers, then the user; their executions stay as history.
"""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, permissions, schemas, views
from api.openapi import documented, links_to
from api.validation import Body, Field, check_email, object_id
from engine.errors import Forbidden, JobNotFound, ServerNotFound
from engine.ids import new_id
from stores.base import Store
from stores.records import User

bp = Blueprint("users", url_prefix="/api/users")

USER_LINKS = links_to(
    "/user_id",
    "user_id",
    "users.get_user.get",
    "users.update_user.put",
    "users.delete_user.delete",
    "servers.servers_of_user.get",
    "scheduler_jobs.jobs_of_user.get",
) + links_to(
    "/user_id", "body.user_id", "scheduler_jobs.create_job.post", "servers.create_server.post"
)

USER_BODY = Body(
    (
        Field("name", "string", required=True, max_length=200, example="John Doe"),
        Field("email", "string", required=True, max_length=254, example="john@example.com"),
        Field(
            "role",
            "string",
            max_length=50,
            example="admin",
            description='"admin" or "user" (default); only an admin may set it',
        ),
    )
)


@bp.post("/")
@documented(body=USER_BODY, response=schemas.USER_ID, links=USER_LINKS)
async def create_user(request: Request) -> HTTPResponse:
    """Create a user (email unique, case-insensitive); admin only."""
    permissions.require_admin(request, "create users")
    values = USER_BODY.parse(request.body)
    now = context.now(request)
    user = User(
        id=new_id(),
        name=values["name"].strip(),
        email=check_email(values["email"]),
        role=permissions.check_role(values.get("role", "user")),
        created_at=now,
        updated_at=now,
    )
    store = context.store(request)
    await context.in_store(request, store.add_user, user)
    return context.reply(views.success("User created successfully", user_id=user.id))


@bp.get("/")
@documented(response=schemas.USERS)
async def list_users(request: Request) -> HTTPResponse:
    """Every user, oldest first (a user sees only themself)."""
    who = permissions.principal(request)
    store = context.store(request)
    if who.admin:
        users = await context.in_store(request, store.list_users)
    else:
        users = [await context.in_store(request, store.get_user, str(who.user_id))]
    return context.reply(
        views.success(
            "Users retrieved successfully", total=len(users), data=[views.user(u) for u in users]
        )
    )


@bp.get("/<user_id>")
@documented(response=schemas.USER)
async def get_user(request: Request, user_id: str) -> HTTPResponse:
    """One user."""
    found = await context.in_store(
        request, permissions.visible_user, request, object_id(user_id, "user")
    )
    return context.reply(views.success("User retrieved successfully", data=views.user(found)))


@bp.put("/<user_id>")
@documented(body=USER_BODY, partial=True, response=schemas.USER_ID)
async def update_user(request: Request, user_id: str) -> HTTPResponse:
    """Change a user's name, email or role (any subset); only an admin changes roles."""
    store = context.store(request)
    found = await context.in_store(
        request, permissions.visible_user, request, object_id(user_id, "user")
    )
    values = USER_BODY.parse(request.body, partial=True)
    if "name" in values:
        found.name = values["name"].strip()
    if "email" in values:
        found.email = check_email(values["email"])
    if "role" in values:
        role = permissions.check_role(values["role"])
        if role != found.role:
            permissions.require_admin(request, "change a role")
        found.role = role
    found.updated_at = context.now(request)
    await context.in_store(request, store.update_user, found)
    permissions.forget_keys(request, user_id=found.id)  # a role change holds at once
    return context.reply(views.success("User updated successfully", user_id=found.id))


def _revoke_keys_and_delete(request: Request, store: Store, user_id: str) -> None:
    """The user's keys revoked (their records kept), then the user gone."""
    for key in store.list_api_keys(user_id):
        store.revoke_api_key(key.id, context.now(request))
    store.delete_user(user_id)


@bp.delete("/<user_id>")
@documented(response=schemas.USER_DELETED)
async def delete_user(request: Request, user_id: str) -> HTTPResponse:
    """Delete a user, their jobs (unscheduled first), servers and keys; admin only."""
    store = context.store(request)
    await context.in_store(request, permissions.visible_user, request, object_id(user_id, "user"))
    if not permissions.principal(request).admin:
        raise Forbidden("Only an admin may delete users")
    jobs_removed = await remove_jobs_of(request, user_id)
    servers_removed = 0
    for server in await context.in_store(request, store.list_servers, user_id):
        try:
            await context.in_store(request, store.delete_server, server.id)
            servers_removed += 1
        except ServerNotFound:
            pass
    await context.in_store(request, _revoke_keys_and_delete, request, store, user_id)
    permissions.forget_keys(request, user_id=user_id)
    # a job created while this ran (its owner check passed just before) is swept too
    jobs_removed += await remove_jobs_of(request, user_id)
    return context.reply(
        views.success(
            "User deleted successfully",
            user_id=user_id,
            jobs_removed=jobs_removed,
            servers_removed=servers_removed,
        )
    )


async def remove_jobs_of(request: Request, user_id: str) -> int:
    """Unschedule and delete every job a user owns; how many went."""
    removed = 0
    store = context.store(request)
    for job in await context.off_loop(request, lambda: store.list_jobs(owner=user_id)):
        try:
            await context.command(context.scheduler(request).remove_job(job.id))
            removed += 1
        except JobNotFound:
            pass
    return removed
