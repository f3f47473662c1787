"""Who may do what: the principal a request acts as, and the checks handlers call.

`admin` may do everything. `user` sees and changes only its own records: another
user's job, server, execution, key or user record answers exactly as a missing one
would (the same NotFound, so nothing tells it exists); giving a job or a server to
another user, changing a role, and admin-only job classes are Forbidden (403).
The README's permission table lists every endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from sanic import Request

from api import context
from engine.errors import (
    ExecutionNotFound,
    Forbidden,
    InvalidField,
    JobNotFound,
    ServerNotFound,
    UserNotFound,
)
from engine.model import Execution, Job
from jobs.registry import resolve_job_class
from stores.records import Server, User

ADMIN = "admin"
USER = "user"
ROLES = (ADMIN, USER)


@dataclass(frozen=True, slots=True)
class Principal:
    """Whom a request acts for: a role, and the user and key when a stored key was sent
    (a CRONWELL_API_KEYS key and open mode act as an admin of no user)."""

    role: str
    user_id: str | None = None
    key_id: str | None = None

    @property
    def admin(self) -> bool:
        return self.role == ADMIN


#: open mode (no key anywhere): every request acts as an admin
OPEN = Principal(ADMIN)


def principal(request: Request) -> Principal:
    found: Principal = getattr(request.ctx, "principal", OPEN)
    return found


def owner_filter(request: Request) -> str | None:
    """None for an admin (everything); the user's own id otherwise."""
    who = principal(request)
    return None if who.admin else who.user_id


def may_see(request: Request, owner: str | None) -> bool:
    who = principal(request)
    return who.admin or (owner is not None and owner == who.user_id)


def check_role(value: str) -> str:
    role = value.strip()
    if role not in ROLES:
        raise InvalidField("role", f"role must be 'admin' or 'user', not {value!r}")
    return role


def require_admin(request: Request, what: str) -> None:
    if not principal(request).admin:
        raise Forbidden(f"Only an admin may {what}")


def check_assignable(request: Request, user_id: str, what: str) -> None:
    """A user may create or move a job or server only to themself (403 otherwise)."""
    who = principal(request)
    if not who.admin and user_id != who.user_id:
        raise Forbidden(f"A user may {what} only for themself (user_id {who.user_id})")


def check_job_class(request: Request, class_string: str) -> None:
    """Job classes marked `admin_only` (backup, cleanup, maintenance) need an admin."""
    if resolve_job_class(class_string).admin_only and not principal(request).admin:
        raise Forbidden(f"{class_string} works on every user's data: only an admin may use it")


def forget_keys(request: Request, *, user_id: str | None = None, key_id: str | None = None) -> None:
    """After a revocation, a role change or a user's deletion: this process's cached key
    checks of them go, so the change holds from the next request on."""
    authenticator = getattr(request.app.ctx, "authenticator", None)
    if authenticator is not None:
        authenticator.forget(user_id=user_id, key_id=key_id)


def visible_user(request: Request, user_id: str) -> User:
    """The user record, or UserNotFound when it is missing or another user's."""
    if not may_see(request, user_id):
        raise UserNotFound(user_id)
    return context.store(request).get_user(user_id)


def visible_job(request: Request, job_id: str) -> Job:
    job = context.store(request).get_job(job_id)
    if not may_see(request, job.owner):
        raise JobNotFound(job_id)
    return job


def check_job(request: Request, job_id: str) -> None:
    """Before an engine command on a job: a user's key must own it (JobNotFound
    otherwise); an admin's command goes straight to the engine, which answers."""
    if not principal(request).admin:
        visible_job(request, job_id)


def check_execution(request: Request, execution_id: str) -> None:
    """As `check_job`, for a command on an execution."""
    if not principal(request).admin:
        visible_execution(request, execution_id)


def visible_server(request: Request, server_id: str) -> Server:
    server = context.store(request).get_server(server_id)
    if not may_see(request, server.user_id):
        raise ServerNotFound(server_id)
    return server


def visible_execution(request: Request, execution_id: str) -> Execution:
    execution = context.store(request).get_execution(execution_id)
    if not may_see(request, execution.owner):
        raise ExecutionNotFound(execution_id)
    return execution
