"""The base every job class extends, and the context it runs with.

A job class (ndscheduler's shape) carries metadata a client can build a form from and
a `run(*args, **kwargs)`. It reaches the store and configuration only through its
`JobContext`, never through globals, so tests hand it a real store on a temp file.
Whatever it prints is captured into the execution's output; its return value is
stored as the execution's return_value (JSON-safe values as they are, others as repr).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from engine.interfaces import CancelSignal
from runners.identity import RunAs
from runners.job_class import JobFailure

if TYPE_CHECKING:
    from jobs.settings import JobSettings
    from stores.base import Store


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument a job class takes, for `/api/scheduler/available-jobs` forms."""

    name: str
    type: str  # "string", "integer", "number", "boolean", "array", "object"
    description: str = ""
    required: bool = False
    #: "pub_args" (positional, in order) or "pub_kwargs" (by name)
    source: str = "pub_kwargs"
    default: Any = None


def system_now() -> datetime:
    """Wall-clock 'now', aware UTC: the default when no clock is lent."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class JobServices:
    """What the service lends every job class: handed to the engine once at start."""

    store: Store
    settings: JobSettings
    #: where job classes read "now" (the engine lends its clock's `now`; tests a fake)
    now: Callable[[], datetime] = system_now
    #: the OS user the scripts a job class starts run as (None: the service's own)
    run_as: RunAs | None = None


@dataclass(slots=True)
class JobContext:
    """Per-execution view a job class runs with."""

    services: JobServices
    job_id: str
    execution_id: str
    cancel: CancelSignal = field(default_factory=threading.Event)
    #: the job's owner (a user id); None for jobs of an admin key or of open mode
    owner: str | None = None
    #: the run's own variables (the job's `env`, decrypted, and the run's ids) for the
    #: child processes a job class starts; never the service's environment
    env: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def settings(self) -> JobSettings:
        return self.services.settings

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def now(self) -> datetime:
        """Current time, aware UTC, from the lent clock."""
        return self.services.now()

    def owner_is_admin(self) -> bool:
        """Whether the job acts with an admin's rights: no owner (an admin key or open
        mode made it) or an owner whose role is admin. A deleted owner has no rights."""
        if self.owner is None:
            return True
        try:
            return self.store.get_user(self.owner).role == "admin"
        except LookupError:
            return False

    def may_touch(self, user_id: str) -> bool:
        """Whether this job may read or change a record of `user_id`."""
        return user_id == self.owner or self.owner_is_admin()


class JobError(JobFailure):
    """Raised by a job class for an expected failure: the message becomes the
    execution's error without a traceback (the runner knows it as JobFailure)."""


class BaseJob:
    #: shown as "description" by available-jobs
    description: ClassVar[str] = ""
    arguments: ClassVar[tuple[Argument, ...]] = ()
    #: classes that work on every user's data: scheduled only by an admin, and run only
    #: for a job whose owner is an admin (`JobContext.owner_is_admin`)
    admin_only: ClassVar[bool] = False

    def __init__(self, context: JobContext) -> None:
        self.context = context

    @classmethod
    def class_string(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def meta(cls) -> dict[str, Any]:
        """The available-jobs entry: documented keys first, then the arguments."""
        return {
            "class_string": cls.class_string(),
            "name": cls.__name__,
            "description": cls.description,
            "arguments": [
                {
                    "name": a.name,
                    "type": a.type,
                    "description": a.description,
                    "required": a.required,
                    "source": a.source,
                    "default": a.default,
                }
                for a in cls.arguments
            ],
        }

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError
