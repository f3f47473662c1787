"""Stores: one interface (`stores.base.Store`), a backend per module, chosen by one URL.

`open_store(settings)` is the only door the service uses: it builds the backend named by
`settings.store_url`, opens it, and turns any failure into one `StoreUnavailable` line
naming the store (password masked) and the reason, never a traceback.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from engine.errors import StoreUnavailable
from stores.base import Store
from stores.settings import StoreSettings

SUPPORTED = (
    "sqlite:///path",
    "mongodb://...",
    "mongodb+srv://...",
    "oracle://user:password@host:port/service",
    "oracle://",
    "memory://",
)
_PASSWORD = re.compile(r"(//[^/@:]*:)[^/@]*@")


def masked(url: str) -> str:
    """The URL with any password replaced by ***."""
    return _PASSWORD.sub(r"\1***@", url)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _oracle(settings: StoreSettings) -> Store:
    from stores.oracle import OracleStore

    parts = urlsplit(settings.store_url)
    dsn, user, password = settings.oracle_dsn, settings.oracle_user, settings.oracle_password
    if parts.hostname:
        service = parts.path.lstrip("/")
        dsn = (
            f"{parts.hostname}:{parts.port or 1521}/{service}"
            if service
            else f"{parts.hostname}:{parts.port or 1521}"
        )
    if parts.username:
        user = unquote(parts.username)
    if parts.password:
        password = unquote(parts.password)
    if not dsn or not user:
        raise StoreUnavailable(
            "oracle store needs a DSN and a user: oracle://user:password@host:port/service "
            "or CRONWELL_ORACLE_DSN with CRONWELL_ORACLE_USER and CRONWELL_ORACLE_PASSWORD"
        )
    return OracleStore(dsn, user, password)


def build_store(settings: StoreSettings) -> Store:
    """The (unopened) backend for `settings.store_url`."""
    url = settings.store_url
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from stores.sqlite import SqliteStore

        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreUnavailable(
                f"store URL {masked(url)} names no file: use sqlite:///relative/path or sqlite:////absolute/path"
            )
        return SqliteStore(path)
    if scheme in ("mongodb", "mongodb+srv"):
        from stores.mongo import MongoStore

        return MongoStore(url, settings.db_name)
    if scheme == "oracle":
        return _oracle(settings)
    if scheme == "memory":
        from stores.memory import MemoryStore

        return MemoryStore()
    raise StoreUnavailable(
        f"unsupported store URL {masked(url)!r}; supported: {', '.join(SUPPORTED)}"
    )


def open_store(settings: StoreSettings) -> Store:
    """Build and open the configured store; StoreUnavailable (one line) when it cannot."""
    store = build_store(settings)
    try:
        store.open()
    except Exception as exc:
        raise StoreUnavailable(
            f"cannot open the {store.backend} store {masked(settings.store_url)}: {_one_line(exc)}"
        ) from exc
    return store


__all__ = ["SUPPORTED", "Store", "build_store", "masked", "open_store"]
