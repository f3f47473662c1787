"""API keys: how one is made, how it is kept, and `/api/users/<user_id>/keys`.

A key is `cw_` + 32 random bytes (256 bits, `secrets.token_urlsafe`), shown once when it
is made. The store keeps only `hash_key(key)`, a SHA-256 hex digest, and the key's first
`PREFIX_LENGTH` characters so a person can tell their keys apart.

Why a plain SHA-256 and not a password hash (bcrypt, scrypt, argon2): those are slow on
purpose because passwords are guessable; a key of 256 random bits is not, so nobody can
search for a key behind a stolen hash however fast the hash is. A fast hash lets every
request be checked with one indexed lookup, in microseconds. The digest is compared
again with `hmac.compare_digest` (constant time) after the lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, permissions, schemas, views
from api.openapi import documented
from api.validation import Body, Field, object_id
from engine.errors import ApiKeyNotFound
from engine.ids import new_id
from stores.base import Store
from stores.records import ApiKey

KEY_PREFIX = "cw_"
KEY_BYTES = 32
PREFIX_LENGTH = 8
#: longest key text looked at; anything longer is malformed (keys made here are 46)
MAX_KEY_LENGTH = 200

bp = Blueprint("keys", url_prefix="/api/users")

KEY_BODY = Body(
    (
        Field(
            "name",
            "string",
            max_length=200,
            allow_empty=True,
            example="deploy script",
            description="a label to tell keys apart",
        ),
    )
)


def generate_key() -> str:
    """A new random key (256 bits from the OS's CSPRNG)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    """What the store keeps of a key (see the module docstring for why SHA-256)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


def key_prefix(key: str) -> str:
    """The part of a key that may be shown and logged: never enough to use it."""
    return key[:PREFIX_LENGTH]


def make_key(store: Store, user_id: str, name: str, now: datetime) -> tuple[ApiKey, str]:
    """Create and store a key for `user_id`; the record and the key (shown once)."""
    key = generate_key()
    record = ApiKey(
        id=new_id(),
        user_id=user_id,
        key_hash=hash_key(key),
        prefix=key_prefix(key),
        name=name,
        created_at=now,
    )
    store.add_api_key(record)
    return record, key


def key_view(key: ApiKey) -> dict[str, Any]:
    """A key as listed: never its hash, never the key."""
    return {
        "key_id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": views.iso(key.created_at),
        "last_used_at": views.iso(key.last_used_at),
    }


@bp.post("/<user_id>/keys")
@documented(body=KEY_BODY, body_optional=True, response=schemas.KEY_CREATED)
async def create_key(request: Request, user_id: str) -> HTTPResponse:
    """Create an API key for a user; the key is in this answer only."""
    store = context.store(request)
    user = await context.in_store(
        request, permissions.visible_user, request, object_id(user_id, "user")
    )
    name = ""
    if request.body and request.body.strip():
        name = KEY_BODY.parse(request.body).get("name", "").strip()
    record, key = await context.in_store(
        request, make_key, store, user.id, name, context.now(request)
    )
    request.app.ctx.authenticator.close()  # the first key closes an open service at once
    return context.reply(
        views.success(
            "API key created; store it now, it is not shown again",
            key_id=record.id,
            api_key=key,
        )
    )


@bp.get("/<user_id>/keys")
@documented(response=schemas.KEYS)
async def list_keys(request: Request, user_id: str) -> HTTPResponse:
    """A user's keys (not revoked), without the secret."""
    store = context.store(request)
    user = await context.in_store(
        request, permissions.visible_user, request, object_id(user_id, "user")
    )
    keys = await context.in_store(request, store.list_api_keys, user.id)
    return context.reply(
        views.success(
            "API keys retrieved successfully", total=len(keys), data=[key_view(k) for k in keys]
        )
    )


@bp.delete("/<user_id>/keys/<key_id>")
@documented(response=schemas.KEY_REVOKED)
async def revoke_key(request: Request, user_id: str, key_id: str) -> HTTPResponse:
    """Revoke one of a user's keys; it is refused from the next request on."""
    store = context.store(request)
    user = await context.in_store(
        request, permissions.visible_user, request, object_id(user_id, "user")
    )
    try:
        record = await context.in_store(request, store.get_api_key, object_id(key_id, "key"))
    except ApiKeyNotFound:
        record = None
    if record is None or record.user_id != user.id or not record.active:
        raise ApiKeyNotFound(key_id)
    await context.in_store(request, store.revoke_api_key, record.id, context.now(request))
    permissions.forget_keys(request, key_id=record.id)
    return context.reply(views.success("API key revoked successfully", key_id=record.id))
