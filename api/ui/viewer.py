"""Who is looking at a page, and the decorator every page handler wears.

A page needs a live session (api/ui/session.py): without one it redirects to the
sign-in form, or in open mode opens an anonymous session. The session's principal is
put on the request as the key middleware does for the API, so every read a page makes
goes through the same owner checks (api/permissions.py) the API's reads do. The
engine's errors become HTML pages with the API's status: a missing (or another user's)
record 404, a refusal 403, bad input 400, a store that does not answer 503.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import quote

from sanic import Request
from sanic.response import HTTPResponse, redirect

from api import context
from api.errors import ApiSurface, status_for
from api.permissions import OPEN, Principal
from api.ui import session
from api.ui.render import page
from engine.errors import CronwellError, Forbidden, InvalidInput, NotFound, StoreError


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking, through which session (templates read these)."""

    principal: Principal
    csrf: str
    #: signed in with a key (so there is a sign-out); False in open mode
    signed_in: bool
    #: what the header shows: the user's name, or what kind of admin this is
    name: str

    @property
    def admin(self) -> bool:
        return self.principal.admin


Handler = Callable[..., Awaitable[HTTPResponse]]


def ui_page(handler: Handler) -> Handler:
    """A page handler taking (request, viewer, **path parameters)."""

    @wraps(handler)
    async def wrapper(request: Request, **params: Any) -> HTTPResponse:
        request.ctx.ui_started = time.perf_counter()
        opened = None
        try:
            found = await session.signed_in(request)
            if found is None:
                if not await session.service_open(request):
                    return redirect(f"/ui/sign-in?next={quote(_target(request))}")
                opened = session.sessions_of(request).start(None)
                found = (opened, OPEN)
        except CronwellError as exc:  # locked out (429), the store away (503)
            return problem(request, None, exc)
        live, who = found
        request.ctx.principal = who
        viewer = Viewer(who, live.csrf, live.key is not None, await _name(request, who))
        try:
            response = await handler(request, viewer, **params)
        except (NotFound, Forbidden, InvalidInput, StoreError) as exc:
            response = problem(request, viewer, exc)
        if opened is not None:
            session.set_session_cookie(response, request, opened)
        return response

    return wrapper


def _target(request: Request) -> str:
    return request.path + (f"?{request.query_string}" if request.query_string else "")


async def _name(request: Request, who: Principal) -> str:
    if who.user_id is None:
        return "admin key" if who.key_id else "open mode (no API key yet)"
    try:
        user = await context.in_store(request, context.store(request).get_user, who.user_id)
    except NotFound:
        return who.user_id
    return f"{user.name} ({who.role})"


TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 429: "Too many attempts"}


def problem(request: Request, viewer: Viewer | None, exc: CronwellError) -> HTTPResponse:
    """The error as a page, with the status the API answers it with."""
    status = status_for(exc, ApiSurface.SCHEDULER)
    title = TITLES.get(status, "The service could not answer")
    response = page(
        request, "problem.html", status, viewer=viewer, nav="", title=title, text=str(exc)
    )
    for name, value in (getattr(exc, "headers", None) or {}).items():
        if name != "WWW-Authenticate":
            response.headers[name] = value
    return response
