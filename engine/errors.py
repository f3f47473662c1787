"""Every error cronwell raises on purpose, in one tree (httpx-style).

Each subclass also inherits the nearest builtin, so callers that only know Python's
exceptions still catch them. `api/errors.py` is the one place that maps them to each
surface's envelope and status code.

    CronwellError
    ├── InvalidInput (ValueError)            -> 400 / 422
    │   ├── TriggerError                     bad cron field / date / interval; names the field
    │   ├── InvalidField                     a sent field has the wrong type or value; names it
    │   ├── ScriptPathError                  path outside the script roots, missing, not a file
    │   └── UnknownJobClass                  a class string that is not a job class
    ├── NotFound (LookupError)               -> 404
    │   ├── JobNotFound
    │   ├── ExecutionNotFound
    │   ├── UserNotFound
    │   ├── ServerNotFound
    │   └── ApiKeyNotFound
    ├── Conflict                             -> 409
    │   ├── JobExists
    │   ├── DuplicateEmail
    │   └── ExecutionNotCancellable
    ├── NotAuthenticated (PermissionError)   -> 401 (API keys configured, none/wrong sent)
    │   └── TooManyAttempts                  -> 429 (too many failed keys from one address)
    ├── Forbidden (PermissionError)          -> 403 (the key's role may not do that)
    ├── StoreError (RuntimeError)            -> 503 + Retry-After (store failed while running)
    │   ├── StoreUnavailable                 cannot reach the store at start
    │   └── StoreBusy                        a handler's store call did not answer in time
    └── EngineError (RuntimeError)           -> 503
        ├── EngineBusy                       command queue full
        └── EngineStopped                    command sent after shutdown
"""

from __future__ import annotations


class CronwellError(Exception):
    """Root of every error cronwell raises deliberately."""


class InvalidInput(CronwellError, ValueError):
    """The caller sent something that can never be valid."""


class TriggerError(InvalidInput):
    """A trigger expression or field is invalid; `field` names which one."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"invalid {field}: {message}")


class InvalidField(InvalidInput):
    """A field the caller sent has the wrong type or an impossible value.

    `field` names it, so the scheduler surface can answer 422 (FastAPI-style) while the
    scripts surface keeps the 400 its document promises.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class ScriptPathError(InvalidInput):
    """A script path that may not be run (outside the roots, missing, not a file...)."""


class UnknownJobClass(InvalidInput):
    """A job_class_string that does not resolve to a job class."""


class NotFound(CronwellError, LookupError):
    """A record looked up by id does not exist."""

    kind = "Record"

    def __init__(self, record_id: str) -> None:
        self.record_id = record_id
        super().__init__(f"{self.kind} not found: {record_id}")


class JobNotFound(NotFound):
    kind = "Job"


class ExecutionNotFound(NotFound):
    kind = "Execution"


class UserNotFound(NotFound):
    kind = "User"


class ServerNotFound(NotFound):
    kind = "Server"


class ApiKeyNotFound(NotFound):
    kind = "API key"


class Conflict(CronwellError):
    """The request clashes with what is stored."""


class JobExists(Conflict):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"Job already exists: {job_id} (send replace_existing: true to replace it)"
        )


class DuplicateEmail(Conflict):
    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(f"A user with email {email} already exists")


class ExecutionNotCancellable(Conflict):
    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"Execution {execution_id} is {status}, not running or queued")


class NotAuthenticated(CronwellError, PermissionError):
    """API keys are configured and the request carried none, or a wrong one."""

    #: sent with the 401 (RFC 6750): how a client is expected to authenticate
    headers: dict[str, str] = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012


class TooManyAttempts(NotAuthenticated):
    """Too many failed authentications from one client address: wait `retry_after`."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after), "WWW-Authenticate": "Bearer"}
        super().__init__(
            f"Too many failed authentications from this address; retry in {retry_after} s"
        )


class Forbidden(CronwellError, PermissionError):
    """The authenticated key's role may not do this (a user acting for another user,
    changing a role, or using an admin-only job class)."""


class StoreError(CronwellError, RuntimeError):
    """The store failed while running (connection lost, disk full...)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or opened at start."""


class StoreBusy(StoreError):
    """A store call made for a request did not answer within its wait (api/storecalls.py)."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class EngineError(CronwellError, RuntimeError):
    """The engine cannot take the command now."""


class EngineBusy(EngineError):
    """The bounded command queue is full."""


class EngineStopped(EngineError):
    """The engine has shut down."""
