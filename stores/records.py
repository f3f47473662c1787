"""Users and servers: records the scheduler surface keeps beside jobs.

Server passwords are held only as `password_encrypted` (a Fernet token made by
`api/secrets.py`); no store or response ever sees the plain password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.model import EPOCH, as_utc, field_names


@dataclass(slots=True)
class User:
    id: str
    name: str
    email: str
    role: str = "user"
    created_at: datetime = EPOCH
    updated_at: datetime = EPOCH

    def to_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in field_names(type(self))}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> User:
        values = {name: record[name] for name in field_names(cls) if name in record}
        for name in ("created_at", "updated_at"):
            values[name] = as_utc(values[name])
        return cls(**values)


@dataclass(slots=True)
class Server:
    id: str
    user_id: str
    name: str
    hostname: str
    port: int
    status: str = "unknown"
    connection_name: str = ""
    instance_url: str = ""
    username: str = ""
    password_encrypted: str = ""
    #: result of the last ServerHealthCheckJob run (latency, tcp/http results)
    last_check: dict[str, Any] = field(default_factory=dict)
    last_check_at: datetime | None = None
    created_at: datetime = EPOCH
    updated_at: datetime = EPOCH

    def to_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in field_names(type(self))}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Server:
        values = {name: record[name] for name in field_names(cls) if name in record}
        for name in ("created_at", "updated_at", "last_check_at"):
            if values.get(name) is not None:
                values[name] = as_utc(values[name])
        return cls(**values)


@dataclass(slots=True)
class ApiKey:
    """An API key of one user. Only `key_hash` (see `api.keys.hash_key`) and a short
    `prefix` of the key are kept; the key itself is shown once, when it is made.

    Revoking sets `revoked_at` and keeps the record: a revoked key stays refused, and the
    store never goes back to "no key at all", which would reopen the service."""

    id: str
    user_id: str
    key_hash: str
    prefix: str
    name: str = ""
    created_at: datetime = EPOCH
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_record(self) -> dict[str, Any]:
        return _record_of(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ApiKey:
        return cls(**_values_for(cls, record, ("created_at", "last_used_at", "revoked_at")))


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """What authenticating one request needs of a key and its user, read at once."""

    key_id: str
    key_hash: str
    user_id: str
    role: str
    revoked: bool
    last_used_at: datetime | None


@dataclass(slots=True)
class AuditEntry:
    """One request that changed something (or tried to): who, what, and its answer."""

    id: str
    created_at: datetime
    method: str
    path: str
    status: int
    user_id: str | None = None
    key_id: str | None = None
    resource_id: str | None = None
    client: str = ""

    def to_record(self) -> dict[str, Any]:
        return _record_of(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AuditEntry:
        return cls(**_values_for(cls, record, ("created_at",)))


def _record_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in field_names(type(obj))}


def _values_for(cls: type, record: dict[str, Any], times: tuple[str, ...]) -> dict[str, Any]:
    """The constructor values of `cls` found in `record`, its `times` in UTC."""
    values = {name: record[name] for name in field_names(cls) if name in record}
    for name in times:
        if values.get(name) is not None:
            values[name] = as_utc(values[name])
    return values
