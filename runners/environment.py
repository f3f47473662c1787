"""The environment a child process starts with: an allow-list, never the service's own.

The service's environment holds its secrets (CRONWELL_SECRET_KEY, CRONWELL_API_KEYS,
database passwords, MONGO_URI credentials, SMTP passwords), so a script must not
inherit it. A child gets only PATH, HOME, LANG, LC_* and TZ from the service, then the
run's own variables: CRONWELL_JOB_ID, CRONWELL_EXECUTION_ID, CRONWELL_SCHEDULED_FOR and
the job's `env` (decrypted by the runner just before the start).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from engine.interfaces import RunRequest

#: the service's variables a child may see
ALLOWED = frozenset({"PATH", "HOME", "LANG", "TZ"})
ALLOWED_PREFIXES = ("LC_",)
#: used when the service itself has no PATH
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def child_environment(
    own: Mapping[str, str] | None = None, service: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allow-listed part of `service` (default os.environ) with `own` laid over it."""
    source = os.environ if service is None else service
    env = {
        name: value
        for name, value in source.items()
        if name in ALLOWED or name.startswith(ALLOWED_PREFIXES)
    }
    env.setdefault("PATH", DEFAULT_PATH)
    if own:
        env.update(own)
    return env


class VariableError(Exception):
    """A job variable could not be decrypted (the service's key changed)."""


def run_variables(request: RunRequest, reveal: Callable[[str], str] | None) -> dict[str, str]:
    """The run's own variables: the job's `env` (values decrypted with `reveal`), then
    the run's ids, which a job's `env` cannot override."""
    variables: dict[str, str] = {}
    for name, token in request.job.env.items():
        try:
            variables[name] = reveal(token) if reveal is not None else token
        except Exception:
            raise VariableError(
                f"job variable {name} cannot be decrypted with the configured secret key"
            ) from None
    execution = request.execution
    variables["CRONWELL_JOB_ID"] = request.job.id
    variables["CRONWELL_EXECUTION_ID"] = execution.id
    scheduled = execution.scheduled_for
    variables["CRONWELL_SCHEDULED_FOR"] = "" if scheduled is None else scheduled.isoformat()
    return variables
