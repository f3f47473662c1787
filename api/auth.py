"""Authentication: which key a request carries, whom it acts for, and the guard on
failed attempts.

Open until the first key: with no key in the store and no CRONWELL_API_KEYS, every
request acts as an admin (the seeds' walkthroughs run verbatim on loopback). Once a key
exists (the store is asked on each request until it has one; a revoked key still
counts, so revoking the last key never reopens the service), every request except the
two health checks needs one, sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`:
401 in the surface's envelope with `WWW-Authenticate: Bearer` otherwise. A
CRONWELL_API_KEYS key acts as an admin of no user. The dashboard signs in with a key
checked here too, and keeps it in a server-side session (api/ui/session.py).

A failed authentication is logged with the client address and the key's first
characters (never the key). More than FAILURE_LIMIT failures (a key sent
that is wrong, revoked or garbled; a request without any key is only a 401) from one
address within FAILURE_WINDOW seconds answer 429 with Retry-After until the oldest of them is a
window old.

`/metrics` needs an admin key like any admin route, unless CRONWELL_METRICS_OPEN=true
lets a scraper on a trusted network in without one.

Checked keys are remembered for `CRONWELL_KEY_CACHE_SECONDS` (1 s by default, 0 turns
it off), and a request whose key is remembered is let through on the event loop, with
no store read and no hand-off to a store thread: that hand-off, not the check itself,
was most of what a key cost (+18-27% on a one-client get-job, the check 3-4%).
Revoking a key, changing a user's role or deleting a user through this process's API
drops the entries at once, so on the node that made the change it holds from the next
request; made elsewhere (another node on the shared store, `cronwell` commands on the
store), it holds within `CRONWELL_KEY_CACHE_SECONDS`, when the entry is checked against
the store again. `last_used_at` is still written at most once a minute per key, by the
request that finds it due (off the loop).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from sanic import Request
from sanic.response import HTTPResponse

from api import storecalls
from api.errors import error_response
from api.keys import MAX_KEY_LENGTH, hash_key, key_prefix, same_hash
from api.open_paths import is_open
from api.permissions import OPEN, Principal
from api.ui.paths import is_page_path
from engine.errors import NotAuthenticated, StoreError, TooManyAttempts
from stores.base import Store
from stores.records import KeyOwner

log = logging.getLogger("cronwell.auth")

HEADER = "X-API-Key"
#: seconds an open service trusts the store's "no key yet" before asking again: a key
#: made meanwhile (`cronwell keys create`, another node) closes it within this long
OPEN_RECHECK = 1.0
FAILURE_LIMIT = 10
FAILURE_WINDOW = 60.0
#: client addresses the failure guard remembers at once (the oldest are forgotten first)
TRACKED_CLIENTS = 10_000
#: last_used_at is written at most this often per key, so a busy key costs no write
#: per request
TOUCH_INTERVAL = timedelta(seconds=60)
#: checked keys a process remembers at most (CRONWELL_KEY_CACHE_SECONDS above 0)
CACHED_KEYS = 10_000
#: what a key may be made of: printable ASCII without spaces (keys made here are
#: URL-safe base64; CRONWELL_API_KEYS may hold other punctuation)
_KEY_CHARACTERS = frozenset(chr(c) for c in range(0x21, 0x7F))
METRICS_PATH = "/metrics"


class FailureGuard:
    """Failed authentications per client address in a sliding window."""

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def watching(self) -> bool:
        """Whether any failure may still count: without one, no request needs its
        client's address looked at (`Authenticator.remembered`)."""
        return bool(self._failures)

    def _recent(self, client: str, now: float) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds the client must wait, when it is over the limit; None otherwise."""
        now = self._clock()
        failures = self._recent(client, now)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[-self.limit] + self.window - now))

    def failed(self, client: str) -> None:
        now = self._clock()
        failures = self._recent(client, now)
        if failures is None:
            failures = self._failures[client] = deque(maxlen=self.limit)
            if len(self._failures) > TRACKED_CLIENTS:
                self._failures.popitem(last=False)
        failures.append(now)


def sent_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries, None when it carries none; NotAuthenticated when a
    header is there but is not a well-formed key."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise NotAuthenticated("Authorization header must be 'Bearer <API key>'")
        return _well_formed(token.strip())
    api_key = headers.get(HEADER)
    if api_key is not None:
        return _well_formed(api_key.strip())
    return None


def _key_header(headers: Mapping[str, str]) -> str | None:
    """The header `sent_key` reads, unparsed, tagged by its name (so one text sent in
    each header is two entries): what `Authenticator.remembered` looks a repeat up by."""
    authorization = headers.get("authorization")
    if authorization is not None:
        return "A" + authorization
    api_key = headers.get(HEADER)
    return None if api_key is None else "X" + api_key


def _carries_key(headers: Mapping[str, str]) -> bool:
    return "authorization" in headers or HEADER in headers


def _well_formed(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not set(key) <= _KEY_CHARACTERS:
        raise NotAuthenticated("Malformed API key")
    return key


#: a principal `Authenticator.remembered` let in, and until when (monotonic) it may be
#: let in again unchecked
Remembered = tuple[Principal, float]


class Authenticator:
    """Turns a request's headers into a Principal, or raises NotAuthenticated."""

    def __init__(
        self,
        store: Store,
        env_keys: tuple[str, ...],
        now: Callable[[], datetime],
        guard: FailureGuard | None = None,
        cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._env_hashes = tuple(hash_key(k) for k in env_keys)
        self._now = now
        self.guard = guard or FailureGuard()
        self._closed = bool(self._env_hashes)
        #: checked keys kept this long (CRONWELL_KEY_CACHE_SECONDS; 0 reads the store on
        #: every request). Revocations, role changes and user deletions made through
        #: this process's API drop their entries at once; made elsewhere (another node,
        #: the store by hand) they take effect when the entry expires.
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[KeyOwner, float]] = {}
        #: what `remembered` let in, by the key header's exact text (`_key_header`):
        #: the principal and until when (monotonic) it may be let in again unchecked
        self._sent: dict[str, Remembered] = {}
        #: counts `forget` calls: a check that read the store before one does not
        #: remember what it read (it may be what was just revoked)
        self._forgotten = 0
        self._open_checked = -math.inf

    @property
    def open(self) -> bool:
        """No key anywhere yet. Once closed, closed for the life of the process."""
        if not self._closed and self.store.has_api_keys():
            self._closed = True
        if not self._closed:
            self._open_checked = self._monotonic()
        return not self._closed

    def close(self) -> None:
        """A key now exists (made through this process's API): closed from now on."""
        self._closed = True

    def surely_open(self) -> bool:
        """Open, as the store said less than OPEN_RECHECK seconds ago: a request may be
        let through without asking the store again (on the event loop, which must never
        wait for a store)."""
        return not self._closed and self._monotonic() - self._open_checked < OPEN_RECHECK

    def remembered(self, headers: Mapping[str, str], client: Callable[[], str]) -> Principal | None:
        """The principal of a request whose key needs no store: a CRONWELL_API_KEYS key,
        or a stored key checked less than `cache_seconds` ago whose `last_used_at` is
        not due. None sends the request to `authenticate` (off the event loop), which
        also answers every refusal, its logging and the failure guard. Pure memory:
        safe on the event loop.

        A key seen before is found by the header's exact text (`_sent`), so the
        request that repeats it costs two dictionary lookups: no parse, no SHA-256, and
        the client's address (Sanic parses forwarding headers for it) only while the
        failure guard holds any failure. A dictionary keyed by the secret leaks nothing
        by timing: the attacker's text is compared with a stored one only when their
        randomly seeded string hashes collide, and what is stored was checked against
        the key's SHA-256 in constant time when it was let in."""
        if not self._closed:
            return None
        if self.guard.watching and self.guard.retry_after(client()) is not None:
            return None
        header = _key_header(headers)
        if header is None:
            return None
        generation = self._forgotten
        seen = self._sent.get(header)
        if seen is not None:
            if seen[1] > self._monotonic():
                return seen[0]
            self._sent.pop(header, None)
        found = self._checked(headers)
        if found is None:
            return None
        if generation == self._forgotten:  # kept only when no forget() overtook the check
            if len(self._sent) >= CACHED_KEYS:
                self._sent.clear()
            self._sent[header] = found
        return found[0]

    def _checked(self, headers: Mapping[str, str]) -> Remembered | None:
        """The slower memory-only check: parse, hash, and the cache of checked keys;
        with until when (monotonic) the answer may be repeated without checking again:
        the cache entry's expiry, or sooner when the key's `last_used_at` falls due."""
        try:
            key = sent_key(headers)
        except NotAuthenticated:
            return None
        if key is None:
            return None
        digest = hash_key(key)
        for index, env_hash in enumerate(self._env_hashes):
            if same_hash(digest, env_hash):
                return Principal("admin", None, f"env:{index + 1}"), math.inf
        if self.cache_seconds <= 0:
            return None
        entry = self._cached(digest)
        if entry is None:
            return None
        owner, expires = entry
        if owner.revoked or not same_hash(digest, owner.key_hash):
            return None
        if owner.last_used_at is None:
            return None
        touch_due = (owner.last_used_at + TOUCH_INTERVAL - self._now()).total_seconds()
        if touch_due <= 0:
            return None
        deadline = min(expires, self._monotonic() + touch_due)
        return Principal(owner.role, owner.user_id, owner.key_id), deadline

    def authenticate(self, headers: Mapping[str, str], client: str) -> Principal:
        if self.open:
            return OPEN
        wait = self.guard.retry_after(client)
        if wait is not None:
            raise TooManyAttempts(wait)
        key: str | None = None
        try:
            key = sent_key(headers)
            if key is None:
                raise NotAuthenticated(
                    f"Missing API key: send 'Authorization: Bearer <key>' or '{HEADER}: <key>'"
                )
            return self._principal(key)
        except NotAuthenticated as exc:
            offered = key is not None or _carries_key(headers)
            if offered:  # a guess (or a garbled one) counts; a request without a key does not
                self.guard.failed(client)
            shown = key_prefix(key) if key is not None else "malformed" if offered else "none"
            log.warning("authentication failed from %s (key prefix %s): %s", client, shown, exc)
            raise

    def _principal(self, key: str) -> Principal:
        digest = hash_key(key)
        for index, env_hash in enumerate(self._env_hashes):
            if same_hash(digest, env_hash):
                return Principal("admin", None, f"env:{index + 1}")
        generation = self._forgotten
        entry = self._cached(digest) if self.cache_seconds > 0 else None
        owner = entry[0] if entry is not None else None
        if owner is None:
            owner = self.store.find_key_owner(digest)
        if owner is None or owner.revoked or not same_hash(digest, owner.key_hash):
            raise NotAuthenticated("Invalid or revoked API key")  # also: its user is gone
        now = self._now()
        if owner.last_used_at is None or now - owner.last_used_at >= TOUCH_INTERVAL:
            self.store.touch_api_key(owner.key_id, now)
            owner = replace(owner, last_used_at=now)
        if self.cache_seconds > 0 and generation == self._forgotten:
            self._remember(digest, owner)
        return Principal(owner.role, owner.user_id, owner.key_id)

    def _cached(self, digest: str) -> tuple[KeyOwner, float] | None:
        """A checked key's owner and its entry's expiry (monotonic), while unexpired."""
        entry = self._cache.get(digest)
        if entry is None:
            return None
        if entry[1] <= self._monotonic():
            self._cache.pop(digest, None)
            return None
        return entry

    def _remember(self, digest: str, owner: KeyOwner) -> None:
        """Cache a check; one already cached keeps its expiry (a touch updates it)."""
        entry = self._cache.get(digest)
        if entry is not None:
            self._cache[digest] = (owner, entry[1])
            return
        if len(self._cache) >= CACHED_KEYS:
            self._cache.clear()
        self._cache[digest] = (owner, self._monotonic() + self.cache_seconds)

    def forget(self, *, user_id: str | None = None, key_id: str | None = None) -> None:
        """Drop cached checks of a user's keys or of one key (after a revocation, a role
        change or a user's deletion through the API), so the next request reads the
        store."""
        self._forgotten += 1
        for digest, (owner, _) in list(self._cache.items()):
            if owner.user_id == user_id or owner.key_id == key_id:
                self._cache.pop(digest, None)
        for header, (who, _) in list(self._sent.items()):
            if (user_id is not None and who.user_id == user_id) or (
                key_id is not None and who.key_id == key_id
            ):
                self._sent.pop(header, None)


def client_address(request: Request) -> str:
    """The peer's address (a proxy's forwarded one when Sanic is configured to trust it)."""
    return str(request.remote_addr or request.ip or "unknown")


async def authenticate(request: Request) -> HTTPResponse | None:
    """Request middleware: answer 401/429 early, before any handler or body parsing.

    The dashboard's pages check their own sessions (a page without one redirects to
    the sign-in form rather than answering 401), and a request a page makes may already
    act for its session (api/ui/session.py's middleware runs first)."""
    if is_open(request.path) or is_page_path(request.path):
        return None
    if hasattr(request.ctx, "principal"):
        return None
    if request.path == METRICS_PATH and request.app.ctx.settings.metrics_open:
        request.ctx.principal = OPEN  # CRONWELL_METRICS_OPEN: a scraper on a trusted network
        return None
    authenticator: Authenticator = request.app.ctx.authenticator
    if authenticator.surely_open():
        request.ctx.principal = OPEN
        return None
    known = authenticator.remembered(request.headers, lambda: client_address(request))
    if known is not None:
        request.ctx.principal = known
        return None
    try:
        # the key lookup (or the open-mode check) reads the store: off the event loop,
        # with the bounded wait of every handler's store call (api/storecalls.py)
        request.ctx.principal = await storecalls.call(
            request, authenticator.authenticate, request.headers, client_address(request)
        )
    except (NotAuthenticated, StoreError) as exc:
        return error_response(request, exc)
    return None
