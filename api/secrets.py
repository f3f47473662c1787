"""Server passwords at rest: Fernet (AES-128-CBC + HMAC-SHA256) tokens.

The key comes from `settings.secret_key` (CRONWELL_SECRET_KEY) or, for the embedded
default, from `<data_dir>/secret.key`, created with mode 0600 on first start. Losing
that file makes stored passwords unreadable, which is the point of keeping it apart
from the database.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from api.config import Settings
from engine.errors import InvalidInput

KEY_FILE = "secret.key"


class SecretBox:
    """Encrypts and decrypts short secrets with one Fernet key."""

    def __init__(self, key: bytes | str) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise InvalidInput(
                "secret key is not a valid Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plain text; InvalidInput when the token was made with another key."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise InvalidInput(
                "stored secret cannot be decrypted with the configured key"
            ) from None


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def load_key(settings: Settings) -> bytes:
    """The configured key, else the data folder's key file, created (0600) if missing."""
    if settings.secret_key:
        return settings.secret_key.encode("ascii")
    path = key_file(settings)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written whole to a file of our own, then linked into place: several processes
    # starting on one data folder (nodes on one machine) all end up with the one key
    # that won the link, and none can read a half-written file.
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process linked its key first: that one is the key
    finally:
        draft.unlink()
    return path.read_bytes().strip()


def load_secret_box(settings: Settings) -> SecretBox:
    return SecretBox(load_key(settings))
