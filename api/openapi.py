"""`GET /openapi.json` and `GET /docs`, generated from the app's real routes.

Every registered route appears: its path parameters from the route pattern, its
summary from the handler's docstring, and its body and query schemas from the same
`Body` / `QueryParam` declarations the handler validates with (attached by
`@documented`), so the document cannot drift from what the server accepts. `/docs`
is a self-contained page (no CDN assets) that lists every operation and can send it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import html as html_response

from api.errors import ApiSurface, dumps, surface_of
from api.validation import Body, QueryParam

F = TypeVar("F", bound=Callable[..., Any])
DOC_ATTR = "__cronwell_doc__"
_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>")
_HIDDEN_METHODS = {"HEAD", "OPTIONS"}

bp = Blueprint("docs")


@dataclass(frozen=True, slots=True)
class RouteDoc:
    body: Body | None = None
    partial: bool = False
    query: tuple[QueryParam, ...] = ()


def documented(
    *, body: Body | None = None, partial: bool = False, query: tuple[QueryParam, ...] = ()
) -> Callable[[F], F]:
    """Attach the request declarations a handler validates with, for the document."""

    def mark(handler: F) -> F:
        setattr(handler, DOC_ATTR, RouteDoc(body, partial, query))
        return handler

    return mark


def _error_schema(surface: ApiSurface) -> dict[str, Any]:
    return {
        "$ref": f"#/components/schemas/{'Detail' if surface is ApiSurface.SCHEDULER else 'Error'}"
    }


def _operation(route: Any, method: str, path: str) -> dict[str, Any]:
    handler = route.handler
    doc: RouteDoc = getattr(handler, DOC_ATTR, RouteDoc())
    lines = (handler.__doc__ or handler.__name__).strip().splitlines()
    surface = surface_of(path)
    tag = route.name.split(".")[1] if route.name.count(".") >= 2 else "service"
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
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
    error = {"content": {"application/json": {"schema": _error_schema(surface)}}}
    operation: dict[str, Any] = {
        "operationId": f"{route.name}.{method.lower()}",
        "summary": lines[0].strip(),
        "tags": [tag],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "Success",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "400": {"description": "Invalid request", **error},
            "401": {
                "description": "Missing, malformed, wrong or revoked API key (once a key exists)",
                **error,
            },
            "403": {"description": "The key's role may not do this", **error},
            "404": {"description": "Not found", **error},
            "409": {"description": "Conflict", **error},
            "413": {"description": "Body too large", **error},
            "500": {"description": "Internal server error", **error},
            "429": {"description": "Too many failed authentications; see Retry-After", **error},
            "503": {"description": "Engine not running or busy", **error},
        },
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
            "required": True,
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
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(app.router.routes, key=lambda r: r.path):
        path = "/" + _PARAM.sub(r"{\1}", route.path).strip("/")
        for method in sorted(set(route.methods) - _HIDDEN_METHODS):
            paths.setdefault(path, {})[method.lower()] = _operation(route, method, path)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "cronwell",
            "version": "0.1.0",
            "description": 'Both surfaces: the scripts API (errors as {"error": ...}) and the '
            'users/servers/scheduler API (errors as {"detail": ...}).',
        },
        "components": {
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                "Detail": {"type": "object", "properties": {"detail": {"type": "string"}}},
            },
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        # either header; the two health checks need none (and open mode none at all)
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "paths": paths,
    }


@bp.get("/openapi.json")
async def openapi_json(request: Request) -> HTTPResponse:
    """The OpenAPI document of this service."""
    return HTTPResponse(dumps(build_openapi(request.app)), content_type="application/json")


@bp.get("/docs")
async def docs(request: Request) -> HTTPResponse:
    """Interactive documentation: every operation, with a form to send it."""
    return html_response(render_docs(build_openapi(request.app)))


def _render_operation(path: str, method: str, op: dict[str, Any]) -> str:
    e = html.escape
    params = "".join(
        f"<label>{e(p['name'])} <small>({e(p['in'])})</small> "
        f'<input data-in="{e(p["in"])}" name="{e(p["name"])}"></label>'
        for p in op["parameters"]
    )
    body = ""
    if "requestBody" in op:
        content = op["requestBody"]["content"]["application/json"]
        example = json.dumps(content["example"], indent=2)
        schema = json.dumps(content["schema"], indent=2)
        body = (
            f"<details><summary>body schema</summary><pre>{e(schema)}</pre></details>"
            f'<textarea name="body" rows="8">{e(example)}</textarea>'
        )
    return (
        f'<details class="op" data-method="{e(method.upper())}" data-path="{e(path)}">'
        f'<summary><b class="m {e(method)}">{e(method.upper())}</b> <code>{e(path)}</code> '
        f"{e(op['summary'])}</summary>"
        f"<p>{e(op.get('description', ''))}</p>{params}{body}"
        f'<button type="button">Send</button><pre class="out"></pre></details>'
    )


def render_docs(spec: dict[str, Any]) -> str:
    ops = "".join(
        _render_operation(path, method, op)
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
    )
    return _PAGE.replace("{{ops}}", ops)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cronwell API</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
.op{border:1px solid #ccc;border-radius:4px;margin:.4rem 0;padding:.3rem .6rem}
.m{display:inline-block;min-width:4.5rem}.get{color:#06c}.post{color:#080}
.put,.patch{color:#a60}.delete{color:#c00}
label{display:block;margin:.3rem 0}textarea{width:100%;font-family:monospace}
pre{background:#f6f6f6;padding:.4rem;overflow:auto}
</style></head><body>
<h1>cronwell API</h1>
<p>Generated from the running server's routes; the raw document is
<a href="/openapi.json">/openapi.json</a>.</p>
<label>API key, sent as X-API-Key (needed once a key exists) <input id="apikey"></label>
{{ops}}
<script>
for (const op of document.querySelectorAll('.op')) {
  op.querySelector('button').addEventListener('click', async () => {
    let path = op.dataset.path; const query = new URLSearchParams();
    for (const input of op.querySelectorAll('input[data-in]')) {
      if (input.dataset.in === 'path') path = path.replace('{' + input.name + '}', encodeURIComponent(input.value));
      else if (input.value) query.set(input.name, input.value);
    }
    const headers = {}; const key = document.getElementById('apikey').value;
    if (key) headers['X-API-Key'] = key;
    const init = {method: op.dataset.method, headers};
    const body = op.querySelector('textarea');
    if (body) { init.body = body.value; headers['Content-Type'] = 'application/json'; }
    const out = op.querySelector('.out');
    try {
      const res = await fetch(path + (query.toString() ? '?' + query : ''), init);
      out.textContent = res.status + ' ' + res.statusText + '\\n' + await res.text();
    } catch (err) { out.textContent = String(err); }
  });
}
</script></body></html>
"""
