"""The audit trail: every request that changes something, kept in the store, and
`GET /api/audit` (admin only, newest first) to read it.

Recorded: every authenticated POST, PUT, PATCH and DELETE with its answer's status
(refusals included: a 403 or a 404 is someone trying), with time, user_id, key_id,
method, path, resource id and client address. Requests refused before authentication
(401, 429) are logged, not stored, so nobody can fill the store without a key.

Entries are written by one background thread in batches (one store write for many
requests), so a request never waits for its audit write; a read of the trail first
waits for what is queued. The queue is bounded: when it is full the request writes its
entry itself. Entries older than `audit_days` are pruned at start and then hourly.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sanic import Blueprint, Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from api import context, permissions, schemas, views
from api.auth import client_address
from api.limits import MAX_OFFSET
from api.openapi import documented
from api.validation import QueryParam, parse_query
from engine.errors import InvalidInput
from engine.ids import new_id
from stores.base import Store
from stores.records import AuditEntry

log = logging.getLogger("cronwell.audit")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: path parameters naming the record a request is about, most specific first
RESOURCE_PARAMS = ("key_id", "execution_id", "server_id", "job_id", "user_id")
QUEUE_SIZE = 10_000
BATCH = 500
PRUNE_EVERY = 3600.0
MAX_PATH = 500

bp = Blueprint("audit", url_prefix="/api")

AUDIT_QUERY = (
    QueryParam("user_id", "object_id", "only this user's requests"),
    QueryParam("since", "string", "only entries at or after this ISO 8601 time"),
    QueryParam("limit", "integer", "page size", default=100, minimum=1, maximum=1000),
    QueryParam("offset", "integer", "entries to skip", default=0, minimum=0, maximum=MAX_OFFSET),
)


class AuditTrail:
    """The batch writer thread and the age-based pruning."""

    def __init__(self, store: Store, now: Callable[[], datetime], days: int) -> None:
        self.store = store
        self._now = now
        self.days = days
        self._queue: queue.Queue[AuditEntry | None] = queue.Queue(QUEUE_SIZE)
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="cronwell-audit", daemon=True)

    def start(self) -> None:
        self.prune()
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(30)

    def add(self, entry: AuditEntry) -> None:
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._write([entry])

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every entry added so far is in the store."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, timeout)

    def prune(self) -> int:
        cutoff = self._now() - timedelta(days=self.days)
        removed = self.store.delete_audit_before(cutoff)
        if removed:
            log.info("audit: pruned %d entries older than %d days", removed, self.days)
        return removed

    def _run(self) -> None:
        last_prune = self._now()
        while True:
            first = self._queue.get()
            batch: list[AuditEntry] = []
            done = first is None
            if first is not None:
                batch.append(first)
            while not done and len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                else:
                    batch.append(more)
            if batch:
                self._write(batch)
            if (self._now() - last_prune).total_seconds() >= PRUNE_EVERY:
                last_prune = self._now()
                self._safely(self.prune)
            if done:
                return

    def _write(self, batch: list[AuditEntry]) -> None:
        self._safely(lambda: self.store.add_audit_entries(batch))
        with self._idle:
            self._pending -= len(batch)
            self._idle.notify_all()

    @staticmethod
    def _safely(work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # a failed write is reported; the thread must go on
            log.exception("audit: writing to the store failed")


def resource_of(request: Request, response: BaseHTTPResponse) -> str | None:
    """The id of the record a request was about: from its path, else from the answer
    (a create answers the new id)."""
    params = request.match_info
    for name in RESOURCE_PARAMS:
        if params.get(name):
            return str(params[name])
    if response.status >= 300 or not response.body:
        return None
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    if isinstance(body, dict):
        body = body.get("job", body) if isinstance(body.get("job"), dict) else body
        for name in RESOURCE_PARAMS:
            if isinstance(body.get(name), str):
                return str(body[name])
    return None


async def record(request: Request, response: BaseHTTPResponse) -> None:
    """Response middleware: queue the entry of an authenticated write."""
    if request.method not in WRITE_METHODS or not hasattr(request.ctx, "principal"):
        return
    trail: AuditTrail | None = getattr(request.app.ctx, "audit", None)
    if trail is None:
        return
    who = permissions.principal(request)
    trail.add(
        AuditEntry(
            id=new_id(),
            created_at=context.now(request),
            method=request.method,
            path=request.path[:MAX_PATH],
            status=response.status,
            user_id=who.user_id,
            key_id=who.key_id,
            resource_id=resource_of(request, response),
            client=client_address(request),
        )
    )


def entry_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "_id": entry.id,
        "time": views.iso(entry.created_at),
        "user_id": entry.user_id,
        "key_id": entry.key_id,
        "method": entry.method,
        "path": entry.path,
        "resource_id": entry.resource_id,
        "status_code": entry.status,
        "client": entry.client,
    }


def _since(text: str | None, zone: ZoneInfo) -> datetime | None:
    """An aware time; without an offset it is in the configured timezone."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"since must be an ISO 8601 time, not {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


@bp.get("/audit")
@documented(query=AUDIT_QUERY, response=schemas.AUDIT)
async def list_audit(request: Request) -> HTTPResponse:
    """The audit trail, newest first (admin only)."""
    permissions.require_admin(request, "read the audit trail")
    query = parse_query(request.get_args(keep_blank_values=True), AUDIT_QUERY)
    user_id: str | None = query.get("user_id")
    since = _since(query.get("since"), context.settings(request).zone)
    trail: AuditTrail = request.app.ctx.audit
    store = context.store(request)

    def render() -> dict[str, Any]:
        trail.flush()
        page = store.list_audit_entries(
            user_id=user_id, since=since, limit=query["limit"], offset=query["offset"]
        )
        return views.success(
            "Audit entries retrieved successfully",
            total=store.count_audit_entries(user_id=user_id, since=since),
            limit=query["limit"],
            offset=query["offset"],
            data=[entry_view(e) for e in page],
        )

    return context.reply(await context.off_loop(request, render))
