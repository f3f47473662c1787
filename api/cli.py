"""`cronwell serve`: the service's entry point; `cronwell keys create`: the first key.

Flags override the environment (and `.env`), which override the defaults; see
`api.config`. Any configuration or store problem at start is ONE line on stderr
and exit status 1, never a traceback. SIGTERM and SIGINT stop the server; the engine
then gets `shutdown_timeout` seconds to let running executions finish.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from api.config import Settings, check_lease, check_node_id, check_timezone, load_settings
from api.keys import make_key
from api.permissions import ROLES
from api.secrets import load_secret_box
from api.validation import check_email
from engine.errors import CronwellError, InvalidInput
from engine.gil import use_engine_switch_interval
from engine.ids import new_id
from runners.capabilities import keep_from_children
from runners.identity import describe_identity, script_identity
from stores import masked, open_store
from stores.base import Store
from stores.records import User


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
    serve.add_argument(
        "--allow-open",
        action="store_true",
        default=None,
        help="serve a non-loopback address although no API key exists yet, so anyone who "
        "reaches the port acts as an admin (CRONWELL_ALLOW_OPEN)",
    )
    keys = commands.add_parser(
        "keys",
        help="manage API keys in the configured store",
        description="Work on the configured store (environment and ./.env) directly, "
        "whether or not the service is running.",
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser(
        "create",
        help="create an API key for a user (made if missing); prints only the key",
        description="Create an API key for the user with EMAIL, creating the user first if "
        "there is none. Prints only the key on stdout (shown once: it is stored hashed).",
    )
    create.add_argument("--email", required=True, help="the user's email")
    create.add_argument("--name", help="the user's name when the user is created (default: EMAIL)")
    create.add_argument(
        "--role",
        choices=ROLES,
        help="the user's role; a new user gets 'user' unless given, an existing user's "
        "role is changed to it",
    )
    create.add_argument("--label", default="", help="a label for the key (shown in key lists)")
    create.add_argument("--store", metavar="URL", help="store URL (overrides CRONWELL_STORE)")
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
        allow_open=args.allow_open,
    )
    for root in settings.script_roots:
        if not root.is_dir():
            raise InvalidInput(f"script root {root} is not a directory")
    if settings.run_as:
        # an unknown user or group, or a CRONWELL_RUN_AS_PYTHON that user cannot run, is a
        # configuration error
        script_identity(settings.run_as, settings.run_as_python)
    if settings.log_level.upper() not in logging.getLevelNamesMapping():
        raise InvalidInput(
            f"CRONWELL_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {settings.log_level!r}"
        )
    return settings


def fail(message: str) -> int:
    print(f"cronwell: {message}", file=sys.stderr)
    return 1


def serve(args: argparse.Namespace) -> int:
    keep_from_children()  # before any child (the interpreter probe) starts
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
    try:
        open_mode = not settings.api_keys and not store.has_api_keys()
    except CronwellError as exc:
        store.close()
        return fail(str(exc))
    if open_mode and not settings.allow_open and not is_loopback(settings.host):
        store.close()
        return fail(
            f"refusing to serve {settings.host} in open mode (no API key exists, so anyone "
            "reaching the port would act as an admin): create one with `cronwell keys create "
            "--email EMAIL --role admin`, set CRONWELL_API_KEYS, or pass --allow-open"
        )
    if args.check:
        store.close()
        identity = describe_identity(settings.run_as, settings.run_as_python)
        roots = ", ".join(str(r) for r in settings.script_roots) or "none"
        mode = "open (no API key yet)" if open_mode else "keys required"
        print(
            f"cronwell: configuration OK; store {where} ({store.backend}) opened; "
            f"script roots: {roots}; timezone {settings.timezone}; "
            f"http://{settings.host}:{settings.port}; {mode}; {identity}"
        )
        return 0
    return run_server(settings, store)


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def create_key(args: argparse.Namespace) -> int:
    """`cronwell keys create`: the key on stdout, nothing else."""
    try:
        settings = load_settings().with_overrides(store_url=args.store)
        email = check_email(args.email)
    except CronwellError as exc:
        return fail(f"invalid input: {exc}")
    try:
        store = open_store(settings)
    except CronwellError as exc:
        return fail(str(exc))
    try:
        now = datetime.now(UTC)
        user = next((u for u in store.list_users() if u.email.casefold() == email.casefold()), None)
        if user is None:
            user = User(
                id=new_id(),
                name=(args.name or email).strip(),
                email=email,
                role=args.role or "user",
                created_at=now,
                updated_at=now,
            )
            store.add_user(user)
            print(f"cronwell: created user {user.id} ({email}, {user.role})", file=sys.stderr)
        elif args.role and args.role != user.role:
            user.role, user.updated_at = args.role, now
            store.update_user(user)
            print(f"cronwell: user {user.id} is now {user.role}", file=sys.stderr)
        record, key = make_key(store, user.id, args.label.strip(), now)
    except CronwellError as exc:
        return fail(str(exc))
    finally:
        store.close()
    print(f"cronwell: key {record.id} for user {user.id} ({user.role})", file=sys.stderr)
    print(key)
    return 0


def run_server(settings: Settings, store: Store) -> int:
    from api.app import create_app, freeze_start_up
    from api.logs import configure_logging, install_event_log
    from api.protocol import GuardedProtocol

    configure_logging(settings)
    # The engine's loop and workers share the GIL with the event loop and the reader;
    # a due fire waits for a switch (engine/gil.py): 1 ms instead of CPython's 5 ms cuts
    # how late fires start while the API is busy (bench.api canaries).
    use_engine_switch_interval()
    app = create_app(settings, store=store)
    install_event_log(app)
    app.register_listener(freeze_start_up, "after_server_start")
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
    if args.command == "keys" and args.keys_command == "create":
        return create_key(args)
    return 2  # argparse already refused anything else
