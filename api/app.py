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
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sanic import Sanic

from api import (
    audit,
    events_stream,
    executions,
    keys,
    metrics,
    nodes,
    openapi,
    output_stream,
    scheduler_jobs,
    scheduler_misc,
    scripts,
    servers,
    storecalls,
    swagger,
    users,
)
from api import event_hub as hub
from api.auth import Authenticator, FailureGuard, authenticate
from api.config import Settings, default_node_id
from api.errors import ApiErrorHandler
from api.give_way import GiveWay
from api.list_answers import ListAnswers
from api.retention import INTERVAL as RETENTION_INTERVAL
from api.retention import Retention
from api.secrets import load_secret_box
from api.ui import session as page_session
from api.ui.blueprints import BLUEPRINTS as PAGE_BLUEPRINTS
from engine.clock import SystemClock
from engine.gcpause import freeze_what_lives
from engine.scheduler import Scheduler
from jobs.base import JobServices
from jobs.notify import Notifier
from jobs.registry import add_job_paths, load_job
from runners import Runner
from runners.capabilities import keep_from_children
from runners.identity import describe_identity, script_identity
from runners.lifeline import kill_leftovers
from runners.watchdog import WATCHDOG
from stores import open_store
from stores.base import Store

log = logging.getLogger("cronwell.api")
_app_numbers = itertools.count(1)

BLUEPRINTS = (
    scripts.bp,
    users.bp,
    keys.bp,
    servers.bp,
    scheduler_jobs.bp,
    executions.bp,
    output_stream.bp,
    events_stream.bp,
    scheduler_misc.bp,
    nodes.bp,
    audit.bp,
    openapi.bp,
    swagger.bp,
    metrics.bp,
    *PAGE_BLUEPRINTS,
)
#: the metrics middleware runs before any other (the API-key check included), so a
#: refused request is counted and timed too
METRICS_MIDDLEWARE_PRIORITY = 1000


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
    app.ctx.give_way = None
    app.ctx.clock = SystemClock()
    app.ctx.available_jobs = None
    #: engine event listeners, subscribed before the engine starts so that recovery's
    #: own events (fires missed while down) reach them too
    app.ctx.event_listeners = []
    app.ctx.reader = None
    app.ctx.list_answers = ListAnswers()
    # read by api.protocol.GuardedProtocol, the protocol every server of this app runs
    app.ctx.request_deadline = settings.request_deadline
    app.ctx.max_client_connections = settings.max_client_connections
    app.ctx.client_connections = Counter()
    app.ctx.event_hub = hub.EventHub(settings.events_window, settings.events_client_queue)
    #: the engine's name among the nodes on the store, and the `node` label of /metrics
    app.ctx.node_id = settings.node_id or default_node_id()
    app.ctx.metrics = metrics.Metrics(
        lambda: app.ctx.scheduler,
        lambda: app.ctx.store,
        lambda: app.ctx.event_hub,
        node=app.ctx.node_id,
    )
    for blueprint in BLUEPRINTS:
        app.blueprint(blueprint)
    decode_path_parameters(app)
    app.register_middleware(
        app.ctx.metrics.request_started, "request", priority=METRICS_MIDDLEWARE_PRIORITY
    )
    app.register_middleware(
        app.ctx.metrics.request_answered, "response", priority=METRICS_MIDDLEWARE_PRIORITY
    )
    # a request a dashboard page makes acts for its session (with its CSRF token)
    app.register_middleware(page_session.from_session, "request", priority=page_session.PRIORITY)
    # always: a key made while the service runs (`cronwell keys create`) closes it
    app.register_middleware(authenticate, "request")
    app.register_middleware(audit.record, "response")
    app.register_listener(start_engine, "before_server_start")
    app.register_listener(stop_engine, "after_server_stop")
    return app


def decode_path_parameters(app: Sanic[Any, Any]) -> None:
    """Every path parameter reaches its handler percent-decoded (`/api/job/a%3Ab%40c`
    names the job `a:b@c`), as a client that quotes its ids expects. Sanic matches on
    the raw path and unquotes a parameter only for routes marked so; marking them here,
    before the router is finalised at start, covers every route of every blueprint."""
    for route in app.router.routes:
        route.unquote = True


async def start_engine(app: Sanic[Any, Any]) -> None:
    """Open the store (if not given), load the secret key, start the engine."""
    settings: Settings = app.ctx.settings
    if app.ctx.store is None:
        app.ctx.store = open_store(settings)
    store: Store = app.ctx.store
    store.open()  # idempotent: a store handed in may not be open yet
    add_job_paths(settings.job_paths)
    app.ctx.secrets = load_secret_box(settings)
    app.ctx.authenticator = Authenticator(
        store,
        settings.api_keys,
        app.ctx.clock.now,
        FailureGuard(limit=settings.auth_failure_limit),
        cache_seconds=settings.key_cache_seconds,
    )
    if app.ctx.authenticator.open:
        log.warning(
            "open mode: no API key exists, every request acts as an admin; "
            "create one with `cronwell keys create --email EMAIL --role admin`"
        )
    app.ctx.audit = audit.AuditTrail(store, app.ctx.clock.now, settings.audit_days)
    app.ctx.audit.start()
    WATCHDOG.start()  # before: it keeps the capabilities it stops scripts with
    keep_from_children()  # no script may inherit a capability (runners/capabilities.py)
    run_as = script_identity(settings.run_as, settings.run_as_python)
    identity = describe_identity(settings.run_as, settings.run_as_python, run_as)
    separated = run_as is not None and run_as.python_usable  # else: say it louder
    (log.info if separated else log.warning)("%s", identity)
    observed: metrics.Metrics = app.ctx.metrics
    scheduler = Scheduler(
        observed.timed_store(store),
        Runner(load_job, reveal=app.ctx.secrets.decrypt, run_as=run_as),
        clock=app.ctx.clock,
        pool_size=settings.pool_size,
        queue_size=settings.command_queue_size,
        backlog_limit=settings.backlog_limit,
        output_cap=settings.output_cap,
        script_roots=settings.script_roots,
        services=JobServices(store, settings, now=app.ctx.clock.now, run_as=run_as),
        node_id=app.ctx.node_id,
        lease_seconds=settings.node_lease,
        kill_leftovers=kill_leftovers,
        journal_folder=settings.data_dir / "journal",
        observer=observed,
        load_ahead=settings.load_ahead or None,
    )
    app.ctx.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cronwell-reader")
    storecalls.open_pools(app)
    for listener in app.ctx.event_listeners:
        scheduler.events.subscribe(listener)
    retention = Retention(
        store,
        app.ctx.clock,
        days=settings.extra.get("history_days"),
        interval=settings.extra.get("history_sweep_seconds", RETENTION_INTERVAL),
    )
    retention.attach(scheduler.events)
    scheduler.events.subscribe(observed.on_event, metrics.LISTENED)
    app.ctx.event_hub.attach(asyncio.get_running_loop())
    app.ctx.event_hub.listen(scheduler.events)
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
    # one pass over the stored jobs serves all three: the engine's load shows each
    # record to retention and notifications (a million jobs are read once, not thrice);
    # what recovery announces meanwhile (runs abandoned or missed while the service was
    # down) waits in the notifier until `notifier.start` says the jobs are known
    await asyncio.to_thread(
        scheduler.start,
        observers=(retention.learn, notifier.learn),
        observed_fields=("history_limit", "notify"),
    )
    app.ctx.scheduler = scheduler
    app.ctx.give_way = GiveWay(scheduler.wakes)  # the protocol calls it (api/protocol.py)
    app.ctx.retention = await asyncio.to_thread(retention.start, loaded=True)
    app.ctx.notifier = await asyncio.to_thread(notifier.start, loaded=True)
    log.info("engine started on the %s store", store.backend)


async def freeze_start_up(app: Sanic[Any, Any]) -> None:
    """Once serving: what start-up built stops being traversed by the collector's full
    passes (engine/gcpause.py). `cronwell serve` registers it; an app a test runs in
    its own process does not."""
    log.info("start-up done: %d objects frozen out of the collector's passes", freeze_what_lives())


async def stop_engine(app: Sanic[Any, Any]) -> None:
    """Stop firing; running executions get `shutdown_timeout` to finish."""
    app.ctx.event_hub.close()
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
    if getattr(app.ctx, "audit", None) is not None:
        await asyncio.to_thread(app.ctx.audit.stop)
    storecalls.close_pools(app)
    if app.ctx.owns_store and app.ctx.store is not None:
        app.ctx.store.close()
