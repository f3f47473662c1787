"""Dashboard sessions: who a page (or a request a page makes) speaks for, and the CSRF
token of each session.

Signing in checks the key exactly as an API request's key is checked: through the
app's `Authenticator` (api/auth.py), so failures count toward its guard, and a key
that is revoked, or whose user is deleted, is refused. The session keeps that key on
the server (it never goes back to the browser) and checks it again the same way on
every request, so the session ends on the first request after a revocation and acts
with the key's current role and owner (the same `Principal` as the API). The browser
holds only a random session id, in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
over TLS).

Sessions live in this process's memory: bounded, idle ones expire, sign-out ends one.
In open mode (no key anywhere) a page view opens an anonymous session all the same,
so that a state-changing request made from a page carries a token the server checks;
once the service is closed (the first key exists) such a session is worth nothing.

`from_session` is a request middleware, run before the key check: a JSON request that
carries no key but a session cookie acts for the session's principal, and a
state-changing one must carry the session's token in `X-CSRF-Token` (403 otherwise).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sanic import Request
from sanic.response import HTTPResponse

from api import storecalls
from api.auth import HEADER, Authenticator, client_address
from api.errors import error_response
from api.open_paths import is_open
from api.permissions import OPEN, Principal
from api.ui.paths import is_page_path
from engine.errors import CronwellError, Forbidden, NotAuthenticated, TooManyAttempts

COOKIE = "cronwell_session"
#: the pre-session token of the sign-in form (double-submit), so a sign-in cannot be forged
SIGNIN_COOKIE = "cronwell_signin"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: seconds a session may sit unused
IDLE_SECONDS = 12 * 3600
#: sessions kept at most; the least recently used goes first
SESSION_LIMIT = 10_000
#: a middleware runs before the key check (api.auth.authenticate) when its priority is higher
PRIORITY = 10


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    #: the key signed in with (None for an open-mode session); never leaves the server
    key: str | None
    last_used: float


class Sessions:
    """Sessions by id; thread-safe, bounded, idle ones dropped when looked up."""

    def __init__(
        self,
        *,
        limit: int = SESSION_LIMIT,
        idle: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._by_id: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._limit, self._idle, self._clock = limit, idle, clock

    def start(self, key: str | None) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), key, self._clock())
        with self._lock:
            self._by_id[session.id] = session
            while len(self._by_id) > self._limit:
                self._by_id.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if now - session.last_used > self._idle:
                del self._by_id[session_id]
                return None
            session.last_used = now
            self._by_id.move_to_end(session_id)
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def __len__(self) -> int:
        return len(self._by_id)


def sessions_of(request: Request) -> Sessions:
    app_ctx = request.app.ctx
    found: Sessions | None = getattr(app_ctx, "ui_sessions", None)
    if found is None:
        found = app_ctx.ui_sessions = Sessions()
    return found


def authenticator_of(request: Request) -> Authenticator:
    found: Authenticator = request.app.ctx.authenticator
    return found


async def service_open(request: Request) -> bool:
    """Open mode (no key anywhere), asking the store as the key middleware does."""
    authenticator = authenticator_of(request)
    if authenticator.surely_open():
        return True
    is_open_now: bool = await storecalls.call(request, lambda: authenticator.open)
    return is_open_now


async def check_key(request: Request, key: str) -> Principal:
    """Whom `key` acts for, checked exactly as an API request's key (NotAuthenticated,
    TooManyAttempts, StoreError as the key middleware raises them)."""
    authenticator = authenticator_of(request)
    who: Principal = await storecalls.call(
        request, authenticator.authenticate, {HEADER: key}, client_address(request)
    )
    return who


async def signed_in(request: Request) -> tuple[Session, Principal] | None:
    """The request's live session and whom it acts for, or None (no session, expired,
    signed out, or its key no longer valid: then the session ends here)."""
    sessions = sessions_of(request)
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return None
    if session.key is None:  # opened in open mode: worth something only while open
        if await service_open(request):
            return session, OPEN
        sessions.end(session.id)
        return None
    try:
        return session, await check_key(request, session.key)
    except TooManyAttempts:
        raise  # the client is locked out for a while; the session itself is still good
    except NotAuthenticated:
        sessions.end(session.id)
        return None


def _carries_key(request: Request) -> bool:
    return "authorization" in request.headers or HEADER in request.headers


async def from_session(request: Request) -> HTTPResponse | None:
    """Request middleware (before the key check): a JSON request with a session cookie
    and no key acts for the session, with its CSRF token on every state change."""
    path = request.path
    if is_page_path(path) or is_open(path) or "cookie" not in request.headers:
        return None  # the header test first: most API clients send no cookie at all
    if COOKIE not in request.cookies or _carries_key(request):
        return None  # a key sent wins over a cookie
    try:
        found = await signed_in(request)
    except CronwellError as exc:  # too many failures (429), the store away (503)
        return error_response(request, exc)
    if found is None:
        return None  # the key check answers (401, or open mode)
    session, who = found
    request.ctx.principal = who  # set first, so a refusal below is audited as theirs
    if request.method not in SAFE_METHODS and not csrf_matches(
        session, request.headers.get(CSRF_HEADER)
    ):
        refused = Forbidden(f"Missing or wrong {CSRF_HEADER} header for this session")
        return error_response(request, refused)
    return None


def csrf_matches(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())


def set_session_cookie(response: HTTPResponse, request: Request, session: Session) -> None:
    response.add_cookie(
        COOKIE,
        session.id,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
        max_age=IDLE_SECONDS,
    )


def clear_cookie(response: HTTPResponse, request: Request, name: str, path: str) -> None:
    """Expire a cookie, with `Secure` only over TLS as when it was set (Sanic's own
    delete_cookie always marks it Secure)."""
    response.add_cookie(
        name,
        "",
        path=path,
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
        max_age=0,
    )
