"""What `stores.open_store` reads of the service's configuration, and nothing more.

The service's `api.config.Settings` has these attributes (read from the environment
there); `stores/` never imports `api/`.
"""

from __future__ import annotations

from typing import Protocol


class StoreSettings(Protocol):
    @property
    def store_url(self) -> str:
        """sqlite:///path, mongodb://..., oracle://... or memory://."""

    @property
    def db_name(self) -> str:
        """The MongoDB database (DB_NAME)."""

    @property
    def oracle_dsn(self) -> str: ...
    @property
    def oracle_user(self) -> str: ...
    @property
    def oracle_password(self) -> str: ...
