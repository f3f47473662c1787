"""The Jinja2 environment of the pages (autoescaped, templates from the package) and
the HTML response every page goes out as: security headers, no caching, the render
time in `Server-Timing`, and gzip when the browser takes it."""

from __future__ import annotations

import gzip
import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from sanic import Request
from sanic.response import HTTPResponse

from api.ui.words import duration_in_words

#: no inline script or style anywhere: everything comes from /ui/static
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Vary": "Accept-Encoding, Cookie",
}
_PLAIN = re.compile(r"[A-Za-z0-9_.:@-]+")
#: smaller pages go out as they are: compressing them saves less than it costs
GZIP_FROM = 8 * 1024


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("api.ui", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship inside the package: no stat per render
    )
    env.globals["t"] = time_tag
    env.filters["seconds"] = seconds_text
    env.filters["path"] = path_segment
    return env


def time_tag(value: str | datetime | None) -> Markup:
    """`<time>` showing the UTC time; ui.js moves that text into the title (shown on
    hover) and shows the time in the browser's zone instead."""
    if value is None:
        return Markup('<span class="none">—</span>')
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    utc = when.astimezone(UTC)
    stamp = utc.isoformat()
    return Markup(f'<time datetime="{stamp}">{stamp[:10]} {stamp[11:19]} UTC</time>')


def path_segment(value: str) -> str:
    """A job or execution id as one URL path segment (ids of either surface need no
    escaping but a few characters; the check is cheaper than quoting every id)."""
    return value if _PLAIN.fullmatch(value) else quote(value, safe="")


def seconds_text(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) < 60:
        return f"{value:.3f} s" if abs(value) < 10 else f"{value:.1f} s"
    sign = "-" if value < 0 else ""
    return sign + duration_in_words(timedelta(seconds=round(abs(value))))


def page(request: Request, template: str, status: int = 200, **values: Any) -> HTTPResponse:
    started = time.perf_counter()
    body = environment().get_template(template).render(**values).encode()
    return html(request, body, status, render_ms=(time.perf_counter() - started) * 1000)


def html(request: Request, body: bytes, status: int = 200, *, render_ms: float) -> HTTPResponse:
    headers = dict(HEADERS)
    if len(body) >= GZIP_FROM and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=5, mtime=0)
        headers["Content-Encoding"] = "gzip"
    timing = f"render;dur={render_ms:.1f}"
    reads_ms = getattr(request.ctx, "ui_reads_ms", None)
    if reads_ms is not None:  # the store reads on the reader thread, waiting included
        timing = f"reads;dur={reads_ms:.1f}, {timing}"
    started = getattr(request.ctx, "ui_started", None)
    if started is not None:  # the whole handler: store reads, rendering, compression
        timing += f", total;dur={(time.perf_counter() - started) * 1000:.1f}"
    headers["Server-Timing"] = timing
    return HTTPResponse(
        body, status=status, headers=headers, content_type="text/html; charset=utf-8"
    )


__all__ = ["Markup", "escape", "page"]
