"""Signing in to the dashboard with an API key, and signing out.

The key is checked by the app's Authenticator exactly as an API request's key is
(api/ui/session.py `check_key`): a wrong, revoked or malformed key is refused and
counts toward the failure guard, whose 429 the form shows with the wait. The form
itself carries a token bound to a short-lived cookie (double-submit), so another site
cannot sign a browser in with a key of its choosing. In open mode there is nothing to
sign in to: both routes send the browser to the jobs list. A sign-in and a sign-out
are in the audit trail as their key's (a failed sign-in is logged, as a refused key).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect

from api.permissions import OPEN
from api.ui import session
from api.ui.render import page
from api.ui.viewer import Viewer, problem
from engine.errors import CronwellError, Forbidden, NotAuthenticated, TooManyAttempts

bp = Blueprint("ui_sign_in", strict_slashes=True)

SIGN_IN = "/ui/sign-in"


def safe_next(value: str | None) -> str:
    """Only a path of this dashboard: never another site (`//evil`, `https://...`)."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"


def _sign_in_form(
    request: Request, status: int = 200, error: str | None = None, next_path: str = "/ui/"
) -> HTTPResponse:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "sign_in.html",
        status,
        viewer=None,
        nav="",
        token=token,
        error=error,
        next_path=next_path,
    )
    response.add_cookie(
        session.SIGNIN_COOKIE,
        token,
        path=SIGN_IN,
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
        max_age=3600,
    )
    return response


def door(handler: Callable[[Request], Awaitable[HTTPResponse]]) -> Callable[..., Any]:
    """The engine's errors on the way in (the store away: 503; locked out: 429) as a
    page with the API's status, not a JSON envelope."""

    @wraps(handler)
    async def wrapper(request: Request) -> HTTPResponse:
        try:
            return await handler(request)
        except CronwellError as exc:
            return problem(request, None, exc)

    return wrapper


@bp.get(SIGN_IN)
@door
async def sign_in_page(request: Request) -> HTTPResponse:
    if await session.service_open(request):
        return redirect("/ui/")
    if await session.signed_in(request) is not None:
        return redirect(safe_next(request.args.get("next")))
    return _sign_in_form(request, next_path=safe_next(request.args.get("next")))


def form_fields(request: Request) -> dict[str, str]:
    """The first value of each field of a urlencoded form (none for another body)."""
    parsed = request.form
    return {name: parsed.get(name) or "" for name in parsed} if parsed else {}


@bp.post(SIGN_IN)
@door
async def sign_in(request: Request) -> HTTPResponse:
    if await session.service_open(request):
        return redirect("/ui/", status=303)
    form = form_fields(request)
    next_path = safe_next(form.get("next"))
    expected = request.cookies.get(session.SIGNIN_COOKIE)
    sent = form.get(session.CSRF_FIELD)
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        return _sign_in_form(request, 403, "The form had expired; please sign in again.", next_path)
    key = (form.get("key") or "").strip()
    if not key:
        return _sign_in_form(request, 400, "Enter an API key.", next_path)
    try:
        request.ctx.principal = await session.check_key(request, key)  # audited as the key
    except TooManyAttempts as exc:
        wait = f"Too many failed sign-ins from this address; try again in {exc.retry_after} s."
        response = _sign_in_form(request, 429, wait, next_path)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except NotAuthenticated:
        return _sign_in_form(request, 401, "That API key is not valid (or was revoked).", next_path)
    opened = session.sessions_of(request).start(key)
    response = redirect(next_path, status=303)
    session.set_session_cookie(response, request, opened)
    session.clear_cookie(response, request, session.SIGNIN_COOKIE, SIGN_IN)
    return response


@bp.post("/ui/sign-out")
@door
async def sign_out(request: Request) -> HTTPResponse:
    sessions = session.sessions_of(request)
    live = sessions.get(request.cookies.get(session.COOKIE))
    found = await session.signed_in(request) if live is not None else None
    if found is not None:
        request.ctx.principal = found[1]  # audited as the session's key
    if live is not None:
        if not session.csrf_matches(live, form_fields(request).get(session.CSRF_FIELD)):
            viewer = Viewer(OPEN, live.csrf, live.key is not None, "")
            refused = Forbidden("The sign-out form carried no valid CSRF token.")
            return problem(request, viewer, refused)
        sessions.end(live.id)
    target = "/ui/" if await session.service_open(request) else SIGN_IN
    response = redirect(target, status=303)
    session.clear_cookie(response, request, session.COOKIE, "/")
    return response
