"""A job's own environment variables (`env`): checked, encrypted, and shown masked.

Accepted on create and update on both surfaces as an object of name -> string. The
values are encrypted with the service's Fernet key before they reach the engine or the
store (like server passwords) and decrypted only by the runner as the child starts;
every answer shows the names only. Names are shell-style; CRONWELL_* names are the
run's own (job id, execution id, scheduled time) and cannot be set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from api.secrets import SecretBox
from engine.errors import InvalidField
from engine.model import NO_ENV

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RESERVED_PREFIX = "CRONWELL_"
MAX_VARIABLES = 100
MAX_VALUE = 32 * 1024
FIELD_DESCRIPTION = (
    "the job's own environment variables (name -> string), stored encrypted, answered "
    "by name only; scripts see these and PATH, HOME, LANG, LC_*, TZ, nothing of the service's"
)


def encrypted_env(value: Any, box: SecretBox) -> Mapping[str, str]:
    """The checked `env` object with every value encrypted (InvalidField if bad); no
    variables is the shared read-only NO_ENV, as the engine keeps it."""
    if not isinstance(value, dict):
        raise InvalidField("env", "env must be an object of name to string")
    if len(value) > MAX_VARIABLES:
        raise InvalidField("env", f"env has more than {MAX_VARIABLES} variables")
    encrypted: dict[str, str] = {}
    for name, text in value.items():
        if not NAME.match(name):
            raise InvalidField("env", f"env name {name!r} is not a valid variable name")
        if name.upper().startswith(RESERVED_PREFIX):
            raise InvalidField("env", f"env name {name} is reserved (CRONWELL_* are the run's)")
        if not isinstance(text, str):
            raise InvalidField("env", f"env value of {name} must be a string")
        if "\x00" in text or len(text) > MAX_VALUE:
            raise InvalidField("env", f"env value of {name} is not a usable value")
        encrypted[name] = box.encrypt(text)
    return encrypted or NO_ENV
