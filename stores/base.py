"""The service's own records contract, and `Store`: what every backend implements.

`Store` is both contracts at once: `engine.interfaces.SchedulerStore` (jobs, claims,
executions, progress, recovery: what the engine needs) and `RecordStore` below (users,
servers and whole-collection work: what the API and the job classes need, and the
engine never touches). The backends (`stores.memory`, `stores.sqlite`, `stores.mongo`,
`stores.oracle`) implement `Store`; tests/test_store_contract.py checks them all.

Records rules, beside the engine's (see `engine.interfaces`): a duplicate user email
raises `DuplicateEmail` (case-insensitive); lookups of a missing id raise the matching
`NotFound` subclass; driver failures raise `StoreError`.

API keys are looked up by their hash only (the store never sees a key); a revoked key
keeps its record, so `has_api_keys` never turns false again once a key was made. Audit
entries are appended, listed newest first (created_at, then id, descending) and pruned by age.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from engine.errors import InvalidInput
from engine.interfaces import RUN_COUNTERS, FireClaim, JobCounts, SchedulerStore
from engine.model import Job
from stores.records import ApiKey, AuditEntry, KeyOwner, Server, User

#: the collection names the scheduler seed documents, used by backup and cleanup too
COLLECTIONS = ("users", "servers", "jobs", "executions")
#: the tasks `Store.maintenance` accepts (MaintenanceJob offers exactly these)
MAINTENANCE_TASKS = ("rebuild_indexes", "optimize_queries", "clear_cache", "vacuum")


def check_collection(name: str) -> None:
    """InvalidInput unless `name` is one of COLLECTIONS (every backend's export uses it)."""
    if name not in COLLECTIONS:
        raise InvalidInput(f"unknown collection {name!r}; one of {', '.join(COLLECTIONS)}")


def check_maintenance_task(task: str) -> None:
    """InvalidInput unless `task` is one of MAINTENANCE_TASKS."""
    if task not in MAINTENANCE_TASKS:
        raise InvalidInput(
            f"unknown maintenance task {task!r}; one of {', '.join(MAINTENANCE_TASKS)}"
        )


class RecordStore(ABC):
    """Users, servers and whole-collection exports and maintenance."""

    # -- users -----------------------------------------------------------------------
    @abstractmethod
    def add_user(self, user: User) -> None:
        """Raises DuplicateEmail when another user has the email (case-insensitive)."""

    @abstractmethod
    def get_user(self, user_id: str) -> User:
        """Raises UserNotFound."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Oldest first."""

    @abstractmethod
    def update_user(self, user: User) -> None:
        """Raises UserNotFound or DuplicateEmail."""

    @abstractmethod
    def delete_user(self, user_id: str) -> None:
        """Raises UserNotFound. Jobs and servers are the caller's to deal with."""

    # -- servers ---------------------------------------------------------------------
    @abstractmethod
    def add_server(self, server: Server) -> None: ...

    @abstractmethod
    def get_server(self, server_id: str) -> Server:
        """Raises ServerNotFound."""

    @abstractmethod
    def list_servers(self, user_id: str | None = None) -> list[Server]:
        """Oldest first, of one user when given."""

    @abstractmethod
    def update_server(self, server: Server) -> None:
        """Raises ServerNotFound."""

    @abstractmethod
    def delete_server(self, server_id: str) -> None:
        """Raises ServerNotFound."""

    # -- API keys --------------------------------------------------------------------
    @abstractmethod
    def add_api_key(self, key: ApiKey) -> None:
        """Insert a key record (its hash is unique: a clash raises StoreError)."""

    @abstractmethod
    def get_api_key(self, key_id: str) -> ApiKey:
        """Raises ApiKeyNotFound (a revoked key is still found, with revoked_at set)."""

    @abstractmethod
    def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The key record with this hash, revoked or not; None when there is none.
        One indexed lookup: this runs on every authenticated request."""

    def find_key_owner(self, key_hash: str) -> KeyOwner | None:
        """The key with this hash (revoked or not) and its user's role; None when the
        key or its user is missing. Every authenticated request asks this: SQL
        backends answer with one join and no document decoding. This default makes
        the two lookups."""
        key = self.find_api_key(key_hash)
        if key is None:
            return None
        try:
            user = self.get_user(key.user_id)
        except LookupError:
            return None
        return KeyOwner(key.id, key.key_hash, user.id, user.role, not key.active, key.last_used_at)

    @abstractmethod
    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        """Keys not revoked, of one user when given, oldest first (created_at, id)."""

    @abstractmethod
    def revoke_api_key(self, key_id: str, when: datetime) -> None:
        """Set revoked_at (kept when already revoked). Raises ApiKeyNotFound."""

    @abstractmethod
    def touch_api_key(self, key_id: str, when: datetime) -> None:
        """Set last_used_at; a missing key is ignored."""

    @abstractmethod
    def has_api_keys(self) -> bool:
        """Whether any key record exists, revoked ones included."""

    # -- audit trail -----------------------------------------------------------------
    @abstractmethod
    def add_audit_entries(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries (atomic: all or none)."""

    @abstractmethod
    def list_audit_entries(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Newest first (created_at, then id, descending); `since` keeps entries at or after it."""

    @abstractmethod
    def count_audit_entries(
        self, *, user_id: str | None = None, since: datetime | None = None
    ) -> int:
        """How many entries `list_audit_entries` would page through."""

    @abstractmethod
    def delete_audit_before(self, cutoff: datetime) -> int:
        """Delete entries older than `cutoff`; how many went."""

    # -- whole-collection work (backup, cleanup, maintenance jobs) --------------------
    @abstractmethod
    def export(self, collection: str) -> Iterator[dict[str, Any]]:
        """Every record of one of COLLECTIONS as a plain dict (servers without
        password_encrypted), streamed, not loaded at once. Raises InvalidInput for
        another name."""

    @abstractmethod
    def maintenance(self, task: str) -> dict[str, Any]:
        """Run one of "rebuild_indexes", "optimize_queries", "clear_cache", "vacuum"
        the way this backend really does it; return what was done. InvalidInput for others.
        """


class Store(SchedulerStore, RecordStore):
    """A backend: the engine's contract and the service's records, over one database."""

    def render_jobs(self, owner: str | None, render: Callable[[Job], str]) -> list[str]:
        """`render(job)` for every job `list_jobs(owner)` gives, in its order.

        For the API's job lists: `render` must be a pure function of the job (its JSON
        text), so a backend may remember each answer by the job's stored row and give it
        again while the row is unchanged, without decoding or rendering that job again.
        This default renders every job; stores/sql.py remembers.
        """
        return [render(job) for job in self.list_jobs(owner)]

    def jobs_revision(self) -> int | None:
        """A number that changes with every write to any job's stored form, whoever
        makes it (the API, the engine's fires, another node or program on the store),
        read without waiting on the store: safe on the event loop. None when it cannot
        be read at once or the backend keeps none; then a list reads its rows.
        """
        return None

    def revised_render_jobs(
        self, owner: str | None, render: Callable[[Job], str]
    ) -> tuple[int | None, list[str]]:
        """`render_jobs` and the `jobs_revision` its rows were read at, both from one
        read snapshot: while the revision reads the same, so would the texts."""
        return None, self.render_jobs(owner, render)


__all__ = [
    "COLLECTIONS",
    "MAINTENANCE_TASKS",
    "RUN_COUNTERS",
    "FireClaim",
    "JobCounts",
    "RecordStore",
    "SchedulerStore",
    "Store",
    "check_collection",
    "check_maintenance_task",
]
