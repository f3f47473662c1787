"""Which request paths are the dashboard's: a leaf module, read by the key middleware
(which leaves pages to their own session check), the OpenAPI document and the route
tables (which leave the HTML pages out of the JSON API)."""

from __future__ import annotations

PAGE_PREFIX = "/ui"


def is_page_path(path: str) -> bool:
    """The dashboard's pages and files (and `/`, which redirects to them)."""
    return path == "/" or path == PAGE_PREFIX or path.startswith(PAGE_PREFIX + "/")
