"""The app factory: both surfaces on one Sanic app, over one engine and one store.

The engine is created and started in `before_server_start` and shut down in
`after_server_stop`, so it lives exactly as long as the serving process. Only one
process may own it: `cronwell serve` runs Sanic single-process. (Were several engines
pointed at one store, the store's atomic `claim_fire` would still fire each occurrence
once.)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sanic import Sanic

from api import (
    executions,
    nodes,
    openapi,
    scheduler_jobs,
    scheduler_misc,
    scripts,
    servers,
    users,
)
from api.auth import require_api_key
from api.config import Settings, default_node_id
from api.errors import ApiErrorHandler
from api.secrets import load_secret_box
from engine.clock import SystemClock
from engine.scheduler import Scheduler
from jobs.base import JobServices
from jobs.notify import Notifier
from jobs.registry import add_job_paths, load_job
from runners import Runner
from stores import open_store
from stores.base import Store
from stores.retention import INTERVAL as RETENTION_INTERVAL
from stores.retention import Retention

log = logging.getLogger("cronwell.api")
_app_numbers = itertools.count(1)

BLUEPRINTS = (
    scripts.bp,
    users.bp,
    servers.bp,
    scheduler_jobs.bp,
    executions.bp,
    scheduler_misc.bp,
    nodes.bp,
    openapi.bp,
)


def create_app(settings: Settings, *, store: Store | None = None) -> Sanic[Any, Any]:
    """A new app (uniquely named, so tests may build several). A given `store` stays
    the caller's to close; one opened here from settings is closed on stop."""
    app = Sanic(
        f"cronwell_{os.getpid()}_{next(_app_numbers)}",
        error_handler=ApiErrorHandler(),
        configure_logging=False,
    )
    app.config.REQUEST_MAX_SIZE = settings.max_body
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.AUTO_RELOAD = False
    app.config.ACCESS_LOG = False
    app.ctx.settings = settings
    app.ctx.store = store
    app.ctx.owns_store = store is None
    app.ctx.scheduler = None
    app.ctx.clock = SystemClock()
    app.ctx.available_jobs = None
    #: engine event listeners, subscribed before the engine starts so that recovery's
    #: own events (fires missed while down) reach them too
    app.ctx.event_listeners = []
    app.ctx.reader = None
    for blueprint in BLUEPRINTS:
        app.blueprint(blueprint)
    if settings.api_keys:  # a middleware costs every request, so only when it has work
        app.register_middleware(require_api_key, "request")
    app.register_listener(start_engine, "before_server_start")
    app.register_listener(stop_engine, "after_server_stop")
    return app


async def start_engine(app: Sanic[Any, Any]) -> None:
    """Open the store (if not given), load the secret key, start the engine."""
    settings: Settings = app.ctx.settings
    if app.ctx.store is None:
        app.ctx.store = open_store(settings)
    store: Store = app.ctx.store
    store.open()  # idempotent: a store handed in may not be open yet
    add_job_paths(settings.job_paths)
    app.ctx.secrets = load_secret_box(settings)
    scheduler = Scheduler(
        store,
        Runner(load_job),
        clock=app.ctx.clock,
        pool_size=settings.pool_size,
        queue_size=settings.command_queue_size,
        backlog_limit=settings.backlog_limit,
        output_cap=settings.output_cap,
        script_roots=settings.script_roots,
        services=JobServices(store, settings, now=app.ctx.clock.now),
        node_id=settings.node_id or default_node_id(),
        lease_seconds=settings.node_lease,
    )
    app.ctx.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cronwell-reader")
    for listener in app.ctx.event_listeners:
        scheduler.events.subscribe(listener)
    retention = Retention(
        store,
        app.ctx.clock,
        days=settings.extra.get("history_days"),
        interval=settings.extra.get("history_sweep_seconds", RETENTION_INTERVAL),
    )
    retention.attach(scheduler.events)
    notifier = Notifier(
        store,
        settings,
        app.ctx.clock,
        scheduler.annotate_execution,
        attempts=settings.extra.get("notify_attempts", 3),
        backoff=settings.extra.get("notify_backoff", 1.0),
        timeout=settings.extra.get("notify_timeout", 10.0),
    )
    notifier.attach(scheduler.events)
    await asyncio.to_thread(scheduler.start)
    app.ctx.scheduler = scheduler
    app.ctx.retention = await asyncio.to_thread(retention.start)
    app.ctx.notifier = await asyncio.to_thread(notifier.start)
    log.info("engine started on the %s store", store.backend)


async def stop_engine(app: Sanic[Any, Any]) -> None:
    """Stop firing; running executions get `shutdown_timeout` to finish."""
    scheduler: Scheduler | None = app.ctx.scheduler
    retention: Retention | None = getattr(app.ctx, "retention", None)
    if retention is not None:
        await asyncio.to_thread(retention.stop)
    if scheduler is not None:
        await asyncio.to_thread(scheduler.shutdown, app.ctx.settings.shutdown_timeout)
        log.info("engine stopped")
    notifier: Notifier | None = getattr(app.ctx, "notifier", None)
    if notifier is not None:  # after the engine: the last runs' notices still go out
        await asyncio.to_thread(notifier.stop)
    if app.ctx.reader is not None:
        app.ctx.reader.shutdown(wait=True)
    if app.ctx.owns_store and app.ctx.store is not None:
        app.ctx.store.close()
