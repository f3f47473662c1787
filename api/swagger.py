"""`GET /docs`: the standard Swagger UI over `/openapi.json`, served offline.

The UI's files come from the `swagger-ui-bundle` package (Swagger UI 4.15.5, Apache-2.0)
installed with the service, never from a CDN: `/docs` is a page naming them under
`/docs/<asset>`, and they are read from the package once and kept in memory. Swagger UI
lists every operation with its parameters, bodies and answer schemas, sends them ("Try
it out"), and takes the API key through its Authorize button (the document's ApiKey
scheme). The asset route is left out of the OpenAPI document: it is not part of the API.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse
from swagger_ui_bundle import swagger_ui_path

from api import openapi

bp = Blueprint("swagger")

#: the files of the bundle the page uses, and their content types
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>cronwell API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="/docs/index.css" />
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"""

INITIALIZER = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
"""


@cache
def asset(name: str) -> bytes:
    """One file of the bundle (read once per process)."""
    return (Path(str(swagger_ui_path)) / name).read_bytes()


@bp.get("/docs")
@openapi.documented(response={"type": "string"}, media_type="text/html")
async def docs(request: Request) -> HTTPResponse:
    """Interactive documentation: Swagger UI over this service's OpenAPI document."""
    return HTTPResponse(PAGE, content_type="text/html; charset=utf-8")


@bp.get("/docs/<name>")
@openapi.documented(hidden=True)
async def docs_asset(request: Request, name: str) -> HTTPResponse:
    """A file of the Swagger UI page."""
    if name == "swagger-initializer.js":
        return HTTPResponse(INITIALIZER, content_type="text/javascript; charset=utf-8")
    if name not in ASSETS:
        raise NotFound(f"Not found: {request.path}")
    return HTTPResponse(
        asset(name),
        content_type=ASSETS[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )
