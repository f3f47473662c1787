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
