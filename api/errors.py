"""The one place that turns an exception into each surface's error envelope and status.

A failing store (a `StoreError`: locked, away, too slow for a handler's bounded wait)
answers 503 with `Retry-After`, since the engine's rule makes it transient.

The scripts surface answers `{"error": "..."}`; everything under /api/users,
/api/servers and /api/scheduler answers `{"detail": "..."}`. Both documents' status
codes are kept; where they are silent docs/decisions.md records the choice. No
response ever carries a traceback: unexpected errors are logged here and answered
with `Internal server error: <message>`.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from typing import Any

from sanic import Request
from sanic.exceptions import MethodNotAllowed, PayloadTooLarge, SanicException
from sanic.exceptions import NotFound as RouteNotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse

from engine.errors import (
    Conflict,
    CronwellError,
    EngineError,
    Forbidden,
    InvalidField,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    ScriptPathError,
    StoreError,
    TooManyAttempts,
    TriggerError,
    UnknownJobClass,
)

log = logging.getLogger("cronwell.api")

SCHEDULER_PREFIXES = ("/api/users", "/api/servers", "/api/scheduler", "/api/audit")
#: seconds a 503 for a failed store asks the client to wait before trying again
STORE_RETRY_AFTER = 2


class ApiSurface(StrEnum):
    SCRIPTS = "scripts"  # {"error": ...}
    SCHEDULER = "scheduler"  # {"detail": ...}


def surface_of(path: str) -> ApiSurface:
    """Which document's envelope a path answers with (unknown routes included)."""
    for prefix in SCHEDULER_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return ApiSurface.SCHEDULER
    return ApiSurface.SCRIPTS


#: built once: json.dumps with any option set builds a new encoder on every call
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


def dumps(value: Any) -> str:
    """JSON for every response: datetimes and other odd return values become strings.
    (The same text as `json.dumps(value, default=str, ensure_ascii=False)`.)"""
    return _ENCODER.encode(value)


JSON_TYPE = "application/json"


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPResponse:
    """Every JSON response, answers and errors alike: the same bytes and content type
    as `sanic.response.json`, built as a plain HTTPResponse (JSONResponse's
    re-encoding machinery is per-request work no handler here uses)."""
    return HTTPResponse(
        dumps(body).encode(), status=status, headers=headers, content_type=JSON_TYPE
    )


def json_bytes_reply(body: bytes, status: int = 200) -> HTTPResponse:
    """`json_reply` for an answer already encoded (the job lists, api/list_answers.py)."""
    return HTTPResponse(body, status=status, content_type=JSON_TYPE)


def status_for(exc: BaseException, surface: ApiSurface) -> int:
    if isinstance(exc, (InvalidField, TriggerError)):
        # A well-formed body with a bad field: 422 where FastAPI's users expect it,
        # 400 on the scripts surface, whose document lists 400 for validation.
        return 422 if surface is ApiSurface.SCHEDULER else 400
    table: tuple[tuple[type[BaseException], int], ...] = (
        (InvalidInput, 400),
        (TooManyAttempts, 429),
        (NotAuthenticated, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (Conflict, 409),
        (StoreError, 503),
        (EngineError, 503),
    )
    for kind, status in table:
        if isinstance(exc, kind):
            return status
    if isinstance(exc, SanicException):
        return int(exc.status_code)
    return 500


def message_for(exc: BaseException, request: Request | None, status: int) -> str:
    path = request.path if request is not None else ""
    if isinstance(exc, StoreError):
        return f"Store unavailable: {exc or type(exc).__name__}"
    if status >= 500 and not isinstance(exc, EngineError):
        return f"Internal server error: {exc or type(exc).__name__}"
    if isinstance(exc, CronwellError):
        return str(exc)
    if isinstance(exc, RouteNotFound):
        return f"Not found: {path}"
    if isinstance(exc, MethodNotAllowed):
        method = request.method if request is not None else "?"
        allowed = ", ".join(allowed_methods(request, exc))
        suffix = f" (allowed: {allowed})" if allowed else ""
        return f"Method {method} not allowed for {path}{suffix}"
    if isinstance(exc, PayloadTooLarge) and "body" in str(exc):
        limit = request.app.config.REQUEST_MAX_SIZE if request is not None else None
        return f"Request body too large (limit {limit} bytes)"
    return str(exc) or type(exc).__name__


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request | None, exc: MethodNotAllowed) -> list[str]:
    """The methods the path answers. Sanic names them only when one route holds them
    all; a path served by several routes (GET, PUT and DELETE of `/api/users/<id>`)
    comes without, so the router is asked once per method (only on a 405)."""
    found = set(getattr(exc, "allowed_methods", None) or ())
    if request is not None:
        for method in _METHODS:
            try:
                request.app.router.get(request.path, method, request.headers.get("host"))
            except SanicException:
                continue
            found.add(method)
    return sorted(found)


def error_response(
    request: Request | None, exc: BaseException, *, path: str | None = None
) -> HTTPResponse:
    """The envelope and status for `exc` on the surface `request` (or `path`) belongs to."""
    surface = surface_of(path if path is not None else request.path if request else "")
    status = status_for(exc, surface)
    message = message_for(exc, request, status)
    key = "detail" if surface is ApiSurface.SCHEDULER else "error"
    headers = dict(getattr(exc, "headers", None) or {})
    if isinstance(exc, StoreError):  # transient by the engine's rule: worth a retry
        headers["Retry-After"] = str(getattr(exc, "retry_after", STORE_RETRY_AFTER))
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = ", ".join(allowed_methods(request, exc))
    field = field_of(exc)
    if field:
        headers[FIELD_HEADER] = field
    return json_reply({key: message}, status, headers)


#: names the request field an error is about, beside the unchanged envelope, so a form
#: (the dashboard's) can show the message next to that field
FIELD_HEADER = "X-Cronwell-Field"


def field_of(exc: BaseException) -> str | None:
    if isinstance(exc, (InvalidField, TriggerError)):
        return exc.field
    if isinstance(exc, ScriptPathError):
        return "script_path"
    if isinstance(exc, UnknownJobClass):
        return "job_class_string"
    return None


class ApiErrorHandler(ErrorHandler):
    """Sanic's own errors (404, 405, 413, bad requests) and ours get the same envelopes."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        response = error_response(request, exception)
        if isinstance(exception, StoreError):  # no traceback: the store's, not ours
            log.warning(
                "request %s %s: %s",
                getattr(request, "method", "?"),
                getattr(request, "path", "?"),
                exception,
            )
        elif response.status >= 500 and not isinstance(exception, EngineError):
            log.error(
                "request %s %s failed",
                getattr(request, "method", "?"),
                getattr(request, "path", "?"),
                exc_info=exception,
            )
        return response
