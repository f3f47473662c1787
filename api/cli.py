"""`cronwell serve`: the service's entry point.

Flags override the environment (and `.env`), which override the defaults; see
`api.config`. Any configuration or store problem at start is ONE line on stderr
and exit status 1, never a traceback. SIGTERM and SIGINT stop the server; the engine
then gets `shutdown_timeout` seconds to let running executions finish.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from api.config import Settings, check_lease, check_node_id, check_timezone, load_settings
from api.secrets import load_secret_box
from engine.errors import CronwellError, InvalidInput
from stores import masked, open_store
from stores.base import Store


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cronwell", description="cronwell job-scheduler service")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve both HTTP APIs and run the engine",
        description="Serve both HTTP APIs on one port and run the engine. Every flag "
        "overrides its environment variable (also read from ./.env).",
    )
    serve.add_argument("--host", help="address to bind (CRONWELL_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (CRONWELL_PORT, default 5000)")
    serve.add_argument(
        "--store",
        metavar="URL",
        help="store URL: sqlite:///path.db, mongodb://..., oracle://... "
        "(CRONWELL_STORE, or MONGO_URI + DB_NAME; default sqlite:///var/cronwell.db)",
    )
    serve.add_argument(
        "--script-root",
        metavar="DIR",
        action="append",
        type=Path,
        help="folder scripts may be run from; repeatable (CRONWELL_SCRIPT_ROOTS, colon-separated)",
    )
    serve.add_argument(
        "--timezone",
        help="zone of run_dates given without an offset (CRONWELL_TIMEZONE, default UTC)",
    )
    serve.add_argument(
        "--pool-size", type=int, help="worker threads running jobs (CRONWELL_POOL_SIZE, default 10)"
    )
    serve.add_argument(
        "--node-id",
        help="this process's name among nodes sharing the store (CRONWELL_NODE_ID, "
        "default hostname:pid)",
    )
    serve.add_argument(
        "--node-lease",
        type=float,
        metavar="SECONDS",
        help="a node is alive this long after its last heartbeat (CRONWELL_NODE_LEASE, "
        "default 10; heartbeats are sent every second)",
    )
    serve.add_argument(
        "--log-json",
        action="store_true",
        default=None,
        help="log one JSON object per line (CRONWELL_LOG_JSON)",
    )
    serve.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration and open the store, print one line, exit 0 or 1",
    )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Environment settings with the given flags laid over them (InvalidInput if bad)."""
    if args.port is not None and not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port must be between 0 and 65535, not {args.port}")
    if args.pool_size is not None and args.pool_size < 1:
        raise InvalidInput(f"--pool-size must be at least 1, not {args.pool_size}")
    settings = load_settings().with_overrides(
        host=args.host,
        port=args.port,
        store_url=args.store,
        script_roots=tuple(p.expanduser() for p in args.script_root) if args.script_root else None,
        timezone=check_timezone(args.timezone) if args.timezone else None,
        pool_size=args.pool_size,
        log_json=args.log_json,
        node_id=check_node_id(args.node_id) if args.node_id is not None else None,
        node_lease=check_lease(args.node_lease) if args.node_lease is not None else None,
    )
    for root in settings.script_roots:
        if not root.is_dir():
            raise InvalidInput(f"script root {root} is not a directory")
    if settings.log_level.upper() not in logging.getLevelNamesMapping():
        raise InvalidInput(
            f"CRONWELL_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {settings.log_level!r}"
        )
    return settings


def fail(message: str) -> int:
    print(f"cronwell: {message}", file=sys.stderr)
    return 1


def serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except CronwellError as exc:
        return fail(f"invalid configuration: {exc}")
    where = masked(settings.store_url)
    try:
        load_secret_box(settings)  # creates the data folder and its key on first start
    except CronwellError as exc:
        return fail(f"invalid configuration: {exc}")
    except OSError as exc:
        return fail(f"data folder {settings.data_dir} is not usable: {exc.strerror or exc}")
    try:
        store = open_store(settings)
    except CronwellError as exc:
        return fail(str(exc))  # names the store (password masked) and the reason
    if args.check:
        store.close()
        roots = ", ".join(str(r) for r in settings.script_roots) or "none"
        print(
            f"cronwell: configuration OK; store {where} ({store.backend}) opened; "
            f"script roots: {roots}; timezone {settings.timezone}; "
            f"http://{settings.host}:{settings.port}"
        )
        return 0
    return run_server(settings, store)


SWITCH_INTERVAL = 0.001


def run_server(settings: Settings, store: Store) -> int:
    from api.app import create_app
    from api.logs import configure_logging, install_event_log
    from api.protocol import GuardedProtocol

    configure_logging(settings)
    # The engine's loop and workers share the GIL with the event loop and the reader;
    # a due fire waits for a switch. 1 ms instead of CPython's 5 ms cuts how late
    # fires start while the API is busy (bench.api canaries), at a small CPU cost.
    sys.setswitchinterval(SWITCH_INTERVAL)
    app = create_app(settings, store=store)
    install_event_log(app)
    try:
        app.run(
            host=settings.host,
            port=settings.port,
            single_process=True,
            protocol=GuardedProtocol,
            auto_reload=False,
            access_log=False,
            motd=False,
            debug=False,
        )
    except OSError as exc:
        return fail(f"cannot listen on {settings.host}:{settings.port}: {exc}")
    except CronwellError as exc:
        return fail(f"cannot start: {exc}")
    finally:
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # argparse already refused anything else
