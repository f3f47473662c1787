"""The paths every caller may reach without a key: the two health checks, and the API's
documentation (the OpenAPI document and the Swagger UI page with its files), which a
browser opens without a key and which holds no record of anyone.

A leaf module: both the authentication middleware (api/auth.py) and the OpenAPI
document (api/openapi.py, which leaves these without a security requirement) read it.
"""

from __future__ import annotations

OPEN_PATHS = frozenset(
    {"/api/health", "/api/health/", "/api/scheduler/health", "/api/scheduler/health/"}
)
DOCUMENTATION = frozenset({"/openapi.json", "/docs", "/docs/"})


def is_open(path: str) -> bool:
    """Whether a request to `path` needs no key."""
    return path in OPEN_PATHS or path in DOCUMENTATION or path.startswith("/docs/")
