"""Optional API keys: when CRONWELL_API_KEYS is set, every request but the two health
checks must carry one of them in `X-API-Key` (401 in the surface's envelope otherwise).
`/metrics` needs one too, unless CRONWELL_METRICS_OPEN=true lets a scraper in without.
"""

from __future__ import annotations

import hmac

from sanic import Request
from sanic.response import HTTPResponse

from api.errors import error_response
from engine.errors import NotAuthenticated

HEADER = "X-API-Key"
METRICS_PATH = "/metrics"
OPEN_PATHS = frozenset(
    {"/api/health", "/api/health/", "/api/scheduler/health", "/api/scheduler/health/"}
)


def key_accepted(sent: str | None, keys: tuple[str, ...]) -> bool:
    """Constant-time comparison against every configured key."""
    if not sent:
        return False
    offered = sent.encode("utf-8", "surrogateescape")
    return any(hmac.compare_digest(offered, key.encode("utf-8")) for key in keys)


async def require_api_key(request: Request) -> HTTPResponse | None:
    """Request middleware: answer 401 early, before any handler or body parsing."""
    settings = request.app.ctx.settings
    keys: tuple[str, ...] = settings.api_keys
    if not keys or request.path in OPEN_PATHS:
        return None
    if request.path == METRICS_PATH and settings.metrics_open:  # CRONWELL_METRICS_OPEN
        return None
    if key_accepted(request.headers.get(HEADER), keys):
        return None
    return error_response(request, NotAuthenticated(f"Missing or invalid {HEADER} header"))
