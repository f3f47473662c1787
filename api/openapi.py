"""`GET /openapi.json`, generated from the app's real routes (`/docs` shows it: api/swagger.py).

Every registered route appears: its path parameters from the route pattern, its
summary from the handler's docstring, and its body and query schemas from the same
`Body` / `QueryParam` declarations the handler validates with (attached by
`@documented`), so the document cannot drift from what the server accepts; each
answer's schema comes from api/schemas.py the same way. Routes marked `hidden` (the
docs page's own files) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse

from api import schemas
from api.errors import ApiSurface, dumps, surface_of
from api.open_paths import is_open
from api.ui.paths import is_page_path
from api.validation import OBJECT_ID_PATTERN, SCRIPT_JOB_ID_PATTERN, Body, QueryParam

F = TypeVar("F", bound=Callable[..., Any])
JSON = "application/json"
DOC_ATTR = "__cronwell_doc__"
_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>")
_HIDDEN_METHODS = {"HEAD", "OPTIONS"}

bp = Blueprint("docs")


@dataclass(frozen=True, slots=True)
class RouteDoc:
    body: Body | None = None
    partial: bool = False
    #: the body may be left out altogether (every field of it is optional)
    body_optional: bool = False
    query: tuple[QueryParam, ...] = ()
    #: the schema of the 200 answer (api.schemas); None only for routes nobody documented
    response: dict[str, Any] | None = None
    #: the 503 answer has the 200's shape (the health checks), not the error envelope
    unhealthy_same_shape: bool = False
    media_type: str = JSON
    #: not part of the API (the docs page's files): left out of the document
    hidden: bool = False
    #: OpenAPI links of the 200 answer: (JSON pointer into it, parameter, operationId)
    links: tuple[tuple[str, str, str], ...] = ()


def documented(
    *,
    body: Body | None = None,
    partial: bool = False,
    body_optional: bool = False,
    query: tuple[QueryParam, ...] = (),
    response: dict[str, Any] | None = None,
    unhealthy_same_shape: bool = False,
    media_type: str = JSON,
    hidden: bool = False,
    links: tuple[tuple[str, str, str], ...] = (),
) -> Callable[[F], F]:
    """Attach the request declarations a handler validates with, and the schema of
    what it answers, for the document."""

    def mark(handler: F) -> F:
        doc = RouteDoc(
            body,
            partial,
            body_optional,
            query,
            response,
            unhealthy_same_shape,
            media_type,
            hidden,
            links,
        )
        setattr(handler, DOC_ATTR, doc)
        return handler

    return mark


def _error_schema(surface: ApiSurface) -> dict[str, Any]:
    return {
        "$ref": f"#/components/schemas/{'Detail' if surface is ApiSurface.SCHEDULER else 'Error'}"
    }


#: path parameters' shapes (what the handlers check); user and server examples are the
#: scheduler document's own ids
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "user_id": {"pattern": OBJECT_ID_PATTERN, "example": "507f1f77bcf86cd799439011"},
    "server_id": {"pattern": OBJECT_ID_PATTERN, "example": "507f1f77bcf86cd799439012"},
    "execution_id": {"pattern": OBJECT_ID_PATTERN},
    # a generated 24-hex id matches the scripts surface's job_id shape too
    "job_id": {"pattern": SCRIPT_JOB_ID_PATTERN, "maxLength": 200},
}


def _path_schema(name: str) -> dict[str, Any]:
    return {"type": "string", **_PATH_SCHEMAS.get(name, {})}


def operation_id(route: Any, method: str) -> str:
    """`users.get_user.get`: blueprint, handler and method; stable across processes
    (Sanic's route names start with the app's per-process name)."""
    name: str = route.name
    return f"{name.split('.', 1)[1] if '.' in name else name}.{method.lower()}"


def links_to(pointer: str, param: str, *targets: str) -> tuple[tuple[str, str, str], ...]:
    """Links from one id in an answer to every operation taking it as `param` (a path
    parameter, or `body.<field>` for a field of the target's JSON body)."""
    return tuple((pointer, param, target) for target in targets)


def _link(pointer: str, param: str, target: str) -> dict[str, Any]:
    value = f"$response.body#{pointer}"
    if param.startswith("body."):
        # a literal body holding the expression: schemathesis evaluates it and merges
        # it into the body it generates
        return {"operationId": target, "requestBody": {param.removeprefix("body."): value}}
    return {"operationId": target, "parameters": {param: value}}


def _operation(
    route: Any, method: str, path: str, key_security: list[dict[str, list[str]]]
) -> dict[str, Any]:
    handler = route.handler
    security = [] if is_open(path) else key_security
    doc: RouteDoc = getattr(handler, DOC_ATTR, RouteDoc())
    lines = (handler.__doc__ or handler.__name__).strip().splitlines()
    surface = surface_of(path)
    tag = route.name.split(".")[1] if route.name.count(".") >= 2 else "service"
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
        for name in _PARAM.findall(route.path)
    ]
    parameters += [
        {
            "name": q.name,
            "in": "query",
            "required": False,
            "description": q.description,
            "schema": q.schema(),
        }
        for q in doc.query
    ]
    error = {"content": {JSON: {"schema": _error_schema(surface)}}}
    answer = doc.response if doc.response is not None else {"type": "object"}
    operation: dict[str, Any] = {
        "operationId": operation_id(route, method),
        "summary": lines[0].strip(),
        "tags": [tag],
        "parameters": parameters,
        "security": security,
        "responses": {
            "200": {"description": "Success", "content": {doc.media_type: {"schema": answer}}},
            "400": {"description": "Invalid request", **error},
            "401": {
                "description": "Missing, malformed, wrong or revoked API key (once a key exists)",
                **error,
            },
            "403": {"description": "The key's role may not do this", **error},
            "404": {"description": "Not found", **error},
            "409": {"description": "Conflict", **error},
            "408": {
                "description": "The request did not arrive whole within "
                "CRONWELL_REQUEST_DEADLINE (a head cut off early answers as the scripts surface)",
                "content": {
                    JSON: {"schema": {"oneOf": [schemas.ref("Error"), schemas.ref("Detail")]}}
                },
            },
            "413": {"description": "Body too large", **error},
            "429": {
                "description": "Too many failed authentications from this address (see "
                "Retry-After), or more than CRONWELL_MAX_CLIENT_CONNECTIONS connections open "
                "from it (answered before any request is read, so always as the scripts "
                "surface)",
                "content": {
                    JSON: {"schema": {"oneOf": [schemas.ref("Error"), schemas.ref("Detail")]}}
                },
            },
            "500": {"description": "Internal server error", **error},
            "503": {"description": "Engine not running or busy", **error},
        },
    }
    if doc.links:
        # where the ids an answer carries can be used next (schemathesis's stateful
        # phase follows them; code generators show them)
        operation["responses"]["200"]["links"] = {
            target: _link(pointer, param, target) for pointer, param, target in doc.links
        }
    if doc.unhealthy_same_shape:
        operation["responses"]["503"] = {
            "description": "The engine is not running",
            "content": {JSON: {"schema": answer}},
        }
    if surface is ApiSurface.SCHEDULER:
        operation["responses"]["422"] = {
            "description": "A field has the wrong type or value",
            **error,
        }
    if len(lines) > 1:
        operation["description"] = " ".join(line.strip() for line in lines[1:] if line.strip())
    if doc.body is not None:
        operation["requestBody"] = {
            "required": not doc.body_optional,
            "content": {
                "application/json": {
                    "schema": doc.body.schema(partial=doc.partial),
                    "example": doc.body.example(),
                }
            },
        }
    return operation


def build_openapi(app: Sanic[Any, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every route the app really serves."""
    # with keys configured every operation but the health checks needs one; without,
    # a key is accepted and ignored, so either way of calling is right
    key_security: list[dict[str, list[str]]] = [{"ApiKey": []}]
    if not app.ctx.settings.api_keys:
        key_security.append({})
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(app.router.routes, key=lambda r: r.path):
        if getattr(route.handler, DOC_ATTR, RouteDoc()).hidden:
            continue
        path = "/" + _PARAM.sub(r"{\1}", route.path).strip("/")
        if is_page_path(path):
            continue  # the dashboard's HTML pages are not part of the JSON API
        for method in sorted(set(route.methods) - _HIDDEN_METHODS):
            operation = _operation(route, method, path, key_security)
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "cronwell",
            "version": "0.1.0",
            "description": 'Both surfaces: the scripts API (errors as {"error": ...}) and the '
            'users/servers/scheduler API (errors as {"detail": ...}).',
        },
        "components": {
            "schemas": schemas.COMPONENTS,
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "a user's key (or one of CRONWELL_API_KEYS); needed once "
                    "any key exists",
                },
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        # either header; the two health checks need none (and open mode none at all)
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "paths": paths,
    }


@bp.get("/openapi.json")
@documented(response=schemas.OPENAPI_DOCUMENT)
async def openapi_json(request: Request) -> HTTPResponse:
    """The OpenAPI document of this service."""
    return HTTPResponse(dumps(build_openapi(request.app)), content_type="application/json")
