"""Settings: one frozen object built from the environment (and a `.env` file).

Precedence: CLI flag > real environment > `.env` in the working folder > default.
`api/cli.py` applies the flags; everything else reads a Settings, never os.environ.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.limits import MAX_SECONDS
from engine.errors import InvalidInput

DEFAULT_STORE = "sqlite:///var/cronwell.db"
#: the shortest load window: a job is read half of it before it is due, and a page read
#: takes milliseconds, so under this the window would spend the loop on reads
MIN_LOAD_AHEAD = 10.0


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    store_url: str = DEFAULT_STORE
    #: MongoDB database name (DB_NAME, as the scheduler seed documents)
    db_name: str = "cronwell"
    oracle_dsn: str = ""
    oracle_user: str = ""
    oracle_password: str = ""
    data_dir: Path = Path("var")
    script_roots: tuple[Path, ...] = ()
    timezone: str = "UTC"
    pool_size: int = 10
    command_queue_size: int = 10_000
    #: fires waiting for a free worker beyond this are recorded as skipped, not queued
    backlog_limit: int = 100_000
    output_cap: int = 64 * 1024  # bytes of stdout+stderr kept per execution
    max_body: int = 1024 * 1024  # bytes per request body
    #: seconds a request may take to arrive whole, head and body (0 = no deadline)
    request_deadline: float = 30.0
    #: connections one client address may hold open at once (0 = no cap)
    max_client_connections: int = 128
    misfire_grace_time: float = 60.0
    #: seconds ahead the engine holds jobs in memory; the rest are read from the store
    #: as they come near (CRONWELL_LOAD_AHEAD; 0 = hold every scheduled job)
    load_ahead: float = 600.0
    shutdown_timeout: float = 30.0
    api_keys: tuple[str, ...] = ()
    #: audit entries older than this many days are pruned (CRONWELL_AUDIT_DAYS)
    audit_days: int = 90
    #: seconds a checked key is remembered (CRONWELL_KEY_CACHE_SECONDS; 0 = never): how
    #: long a key revoked on another node sharing the store may still work on this one
    key_cache_seconds: float = 1.0
    #: failed authentications per client address per minute before 429
    #: (CRONWELL_AUTH_FAILURE_LIMIT)
    auth_failure_limit: int = 10
    #: OS user[:group] scripts run as when the service may switch users (CRONWELL_RUN_AS)
    run_as: str = ""
    #: the interpreter python scripts start with as that user (CRONWELL_RUN_AS_PYTHON;
    #: default: the service's own if that user can run it, else the system's)
    run_as_python: str = ""
    #: serve a non-loopback address with no key anywhere (--allow-open)
    allow_open: bool = False
    #: /metrics answers without an API key (for a scraper on a trusted network)
    metrics_open: bool = False
    #: events kept for Last-Event-ID resumes of /api/scheduler/events
    events_window: int = 10_000
    #: events one SSE client may have unsent before it is dropped as too slow
    events_client_queue: int = 1000
    #: seconds between SSE heartbeat comments on an idle stream
    sse_heartbeat: float = 15.0
    secret_key: str = ""  # Fernet key; generated into data_dir on first start when empty
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "cronwell@localhost"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    backup_dir: Path | None = None
    report_dir: Path | None = None
    #: extra folders put on sys.path so user job classes can be imported by class string
    job_paths: tuple[Path, ...] = ()
    log_json: bool = False
    log_level: str = "INFO"
    #: this process's name among the nodes on the store ("" means hostname:pid)
    node_id: str = ""
    #: seconds a node counts as alive after its last heartbeat (one a second)
    node_lease: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def backups(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @property
    def reports(self) -> Path:
        return self.report_dir or self.data_dir / "reports"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; `#` comments, `export ` prefixes and quotes allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise InvalidInput(f"{name} must be true or false, not {value!r}")


def _int(name: str, value: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}, not {number}")
    return number


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p.strip())


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown timezone: {name!r}") from None
    return name


def default_node_id() -> str:
    """hostname:pid: unique on a machine, and says where to look."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_node_id(value: str) -> str:
    text = value.strip()
    if not text or len(text) > 200 or any(c.isspace() or not c.isprintable() for c in text):
        raise InvalidInput(
            f"node id must be 1-200 printable characters without spaces, not {value!r}"
        )
    return text


def check_lease(seconds: float) -> float:
    """A lease shorter than three heartbeats (one a second) would expire between them."""
    if not 3.0 <= seconds <= 3600.0:
        raise InvalidInput(f"the node lease must be 3 to 3600 seconds, not {seconds:g}")
    return seconds


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """Settings from `.env` overlaid by the real environment."""
    env: dict[str, str] = read_dotenv(dotenv) if dotenv is not None else {}
    env.update(os.environ if environ is None else environ)
    get = env.get
    s: dict[str, Any] = {}
    if v := get("CRONWELL_HOST"):
        s["host"] = v
    if v := get("CRONWELL_PORT"):
        s["port"] = _int("CRONWELL_PORT", v, 0)
    s["db_name"] = get("DB_NAME") or "cronwell"
    s["oracle_dsn"] = get("CRONWELL_ORACLE_DSN", "")
    s["oracle_user"] = get("CRONWELL_ORACLE_USER", "")
    s["oracle_password"] = get("CRONWELL_ORACLE_PASSWORD", "")
    if v := get("CRONWELL_STORE") or get("MONGO_URI"):
        s["store_url"] = v
    elif s["oracle_dsn"]:
        s["store_url"] = "oracle://"
    if v := get("CRONWELL_DATA_DIR"):
        s["data_dir"] = Path(v).expanduser()
    if v := get("CRONWELL_SCRIPT_ROOTS"):
        s["script_roots"] = _paths(v)
    if v := get("CRONWELL_TIMEZONE"):
        s["timezone"] = check_timezone(v)
    for key, name, minimum in (
        ("CRONWELL_POOL_SIZE", "pool_size", 1),
        ("CRONWELL_COMMAND_QUEUE", "command_queue_size", 1),
        ("CRONWELL_BACKLOG_LIMIT", "backlog_limit", 1),
        ("CRONWELL_OUTPUT_CAP", "output_cap", 1024),
        ("CRONWELL_MAX_BODY", "max_body", 1024),
        ("CRONWELL_SMTP_PORT", "smtp_port", 1),
        ("CRONWELL_AUDIT_DAYS", "audit_days", 1),
        ("CRONWELL_AUTH_FAILURE_LIMIT", "auth_failure_limit", 1),
        ("CRONWELL_EVENTS_WINDOW", "events_window", 1),
        ("CRONWELL_EVENTS_CLIENT_QUEUE", "events_client_queue", 1),
    ):
        if v := get(key):
            s[name] = _int(key, v, minimum)
    for key, name in (
        ("CRONWELL_MISFIRE_GRACE", "misfire_grace_time"),
        ("CRONWELL_SHUTDOWN_TIMEOUT", "shutdown_timeout"),
        ("CRONWELL_REQUEST_DEADLINE", "request_deadline"),
        ("CRONWELL_LOAD_AHEAD", "load_ahead"),
    ):
        if v := get(key):
            seconds = _int(key, v, 0)
            if seconds > MAX_SECONDS:  # past it a timer or a date sum overflows
                raise InvalidInput(f"{key} must be at most {MAX_SECONDS} (a year), not {seconds}")
            s[name] = float(seconds)
    if 0 < s.get("load_ahead", MIN_LOAD_AHEAD) < MIN_LOAD_AHEAD:
        raise InvalidInput(
            f"CRONWELL_LOAD_AHEAD must be 0 (every job in memory) or at least "
            f"{MIN_LOAD_AHEAD:g} seconds, not {s['load_ahead']:g}"
        )
    if v := get("CRONWELL_MAX_CLIENT_CONNECTIONS"):
        s["max_client_connections"] = _int("CRONWELL_MAX_CLIENT_CONNECTIONS", v, 0)
    if v := get("CRONWELL_KEY_CACHE_SECONDS"):
        s["key_cache_seconds"] = _cache_seconds(v)
    if v := get("CRONWELL_API_KEYS"):
        s["api_keys"] = tuple(k.strip() for k in v.split(",") if k.strip())
    for key, name in (
        ("CRONWELL_SECRET_KEY", "secret_key"),
        ("CRONWELL_SMTP_HOST", "smtp_host"),
        ("CRONWELL_SMTP_FROM", "smtp_from"),
        ("CRONWELL_SMTP_USER", "smtp_user"),
        ("CRONWELL_SMTP_PASSWORD", "smtp_password"),
        ("CRONWELL_LOG_LEVEL", "log_level"),
        ("CRONWELL_RUN_AS", "run_as"),
        ("CRONWELL_RUN_AS_PYTHON", "run_as_python"),
    ):
        if v := get(key):
            s[name] = v
    if v := get("CRONWELL_SMTP_STARTTLS"):
        s["smtp_starttls"] = _bool("CRONWELL_SMTP_STARTTLS", v)
    if v := get("CRONWELL_ALLOW_OPEN"):
        s["allow_open"] = _bool("CRONWELL_ALLOW_OPEN", v)
    if v := get("CRONWELL_SSE_HEARTBEAT"):  # 0 would send heartbeats back to back
        s["sse_heartbeat"] = float(_int("CRONWELL_SSE_HEARTBEAT", v, 1))
    if v := get("CRONWELL_METRICS_OPEN"):
        s["metrics_open"] = _bool("CRONWELL_METRICS_OPEN", v)
    if v := get("CRONWELL_LOG_JSON"):
        s["log_json"] = _bool("CRONWELL_LOG_JSON", v)
    if v := get("CRONWELL_BACKUP_DIR"):
        s["backup_dir"] = Path(v).expanduser()
    if v := get("CRONWELL_REPORT_DIR"):
        s["report_dir"] = Path(v).expanduser()
    if v := get("CRONWELL_JOB_PATH"):
        s["job_paths"] = _paths(v)
    if v := get("CRONWELL_NODE_ID"):
        s["node_id"] = check_node_id(v)
    if v := get("CRONWELL_NODE_LEASE"):
        s["node_lease"] = check_lease(_seconds("CRONWELL_NODE_LEASE", v))
    s["extra"] = _job_settings(get)
    return Settings(**s)


#: knobs of individual built-in jobs, kept in Settings.extra under these keys
JOB_SECONDS = {
    "CRONWELL_HEALTH_CHECK_TIMEOUT": "health_check_timeout",
    "CRONWELL_SMTP_TIMEOUT": "smtp_timeout",
    "CRONWELL_WEBHOOK_TIMEOUT": "webhook_timeout",
    "CRONWELL_METRICS_CPU_INTERVAL": "metrics_cpu_interval",
    "CRONWELL_CUSTOM_SCRIPT_TIMEOUT": "custom_script_timeout",
    "CRONWELL_NOTIFY_TIMEOUT": "notify_timeout",
    "CRONWELL_NOTIFY_BACKOFF": "notify_backoff",
}


def _seconds(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds, not {value!r}") from None
    if not number > 0:
        raise InvalidInput(f"{name} must be more than 0 seconds, not {value!r}")
    return number


def _cache_seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 3600:
        raise InvalidInput(
            f"CRONWELL_KEY_CACHE_SECONDS must be a number of seconds from 0 to 3600, not {value!r}"
        )
    return number


def _job_settings(get: Callable[[str], str | None]) -> dict[str, Any]:
    extra: dict[str, Any] = {
        key: _seconds(name, v) for name, key in JOB_SECONDS.items() if (v := get(name))
    }
    if v := get("CRONWELL_SMTP_CAFILE"):
        extra["smtp_cafile"] = v
    # history retention (api/retention.py): executions older than this many days go
    if v := get("CRONWELL_HISTORY_DAYS"):
        extra["history_days"] = _int("CRONWELL_HISTORY_DAYS", v, 1)
    if v := get("CRONWELL_HISTORY_SWEEP_SECONDS"):
        extra["history_sweep_seconds"] = _seconds("CRONWELL_HISTORY_SWEEP_SECONDS", v)
    # job notifications (jobs/notify.py): attempts per target, in all
    if v := get("CRONWELL_NOTIFY_ATTEMPTS"):
        extra["notify_attempts"] = _int("CRONWELL_NOTIFY_ATTEMPTS", v, 1)
    return extra
