"""One small HTTP client for the jobs that talk to web peers (webhook, health check).

Stdlib urllib, with two rules the jobs need: only http/https URLs, and redirects are
not followed (a 3xx is reported as it is), so a peer can never bounce a request to
another scheme or host behind the job's back. Bodies are read only up to a cap.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jobs.base import JobError

#: the most of a response body any job keeps
EXCERPT_BYTES = 2048
USER_AGENT = "cronwell-job/1"


def check_http_url(url: Any, name: str = "url") -> str:
    """The URL when it is an absolute http(s) URL with a host; JobError otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise JobError(f"{name} must be a non-empty http(s) URL, not {url!r}")
    text: str = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise JobError(f"{name} is malformed: {text!r} ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise JobError(
            f"{name} must use http or https, not {parts.scheme or 'no scheme'}: {text!r}"
        )
    if not parts.hostname:
        raise JobError(f"{name} has no host: {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int
    latency_ms: float
    excerpt: str
    #: True when the excerpt stopped at EXCERPT_BYTES
    truncated: bool

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        return {
            "status_code": self.status,
            "latency_ms": self.latency_ms,
            "response_excerpt": self.excerpt,
            "truncated": self.truncated,
        }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError carrying the 3xx


_OPENER = urllib.request.build_opener(_NoRedirect())


def http_request(
    method: str,
    url: str,
    *,
    timeout: float,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResult:
    """Send one request; any status comes back as a result, a transport failure
    (refused, timeout, DNS, TLS) as JobError."""
    request = urllib.request.Request(
        url, data=body, method=method, headers={"User-Agent": USER_AGENT, **(headers or {})}
    )
    started = time.perf_counter()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read(EXCERPT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(EXCERPT_BYTES + 1)
        exc.close()
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, bad replies
        reason = getattr(exc, "reason", exc)
        raise JobError(f"{method} {url} failed: {reason}") from None
    latency = round((time.perf_counter() - started) * 1000, 2)
    return HttpResult(
        status=status,
        latency_ms=latency,
        excerpt=raw[:EXCERPT_BYTES].decode("utf-8", errors="replace"),
        truncated=len(raw) > EXCERPT_BYTES,
    )
