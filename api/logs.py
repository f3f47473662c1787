"""Logging for `cronwell serve`: `key=value` lines by default, one JSON object per line
with `--log-json` (CRONWELL_LOG_JSON) for log shippers.

Engine events (job added, fired, completed, failed, missed ...) become one line each on
the `cronwell.events` logger, with job_id and execution_id as fields of their own, so
`grep execution_id=...` or a JSON query finds every line of one run. Text that could
carry a secret (errors, store URLs) goes through `stores.masked` first; server
passwords never reach the engine at all.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from sanic import Sanic

from api.config import Settings
from engine import events as ev
from engine.events import Event
from stores import masked

#: loggers Sanic writes to; they are routed through the same handler as ours
SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets")
EVENT_LOGGER = "cronwell.events"
#: an execution's error is logged as its last line (a traceback's message), this long at most
ERROR_EXCERPT = 300

#: what each event kind says in the `msg` field, and how loud it is
_EVENT_TEXT: dict[str, tuple[str, int]] = {
    ev.JOB_ADDED: ("job added", logging.INFO),
    ev.JOB_MODIFIED: ("job modified", logging.INFO),
    ev.JOB_REMOVED: ("job removed", logging.INFO),
    ev.JOB_PAUSED: ("job paused", logging.INFO),
    ev.JOB_RESUMED: ("job resumed", logging.INFO),
    ev.EXECUTION_SUBMITTED: ("execution submitted", logging.INFO),
    ev.EXECUTION_STARTED: ("execution started", logging.INFO),
    ev.EXECUTION_EXECUTED: ("execution completed", logging.INFO),
    ev.EXECUTION_FAILED: ("execution failed", logging.WARNING),
    ev.JOB_MISSED: ("fire missed", logging.WARNING),
    ev.MAX_INSTANCES_REACHED: ("fire skipped: max_instances reached", logging.WARNING),
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="milliseconds")


def _excerpt(error: str) -> str:
    """The last non-empty line (a traceback's message), masked and bounded."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    text = masked(lines[-1]) if lines else ""
    return text if len(text) <= ERROR_EXCERPT else text[: ERROR_EXCERPT - 3] + "..."


def event_fields(event: Event) -> dict[str, Any]:
    """The fields one event line carries (ids first; None values left out)."""
    fields: dict[str, Any] = {"event": event.kind, "job_id": event.job_id}
    execution = event.execution
    if execution is not None:
        fields["execution_id"] = execution.id
        fields["status"] = str(execution.status)
        fields["reason"] = execution.reason
        fields["attempt"] = execution.attempt
        fields["retry_of"] = execution.retry_of
        fields["scheduled_for"] = _iso(execution.scheduled_for)
        fields["duration_s"] = (
            None if execution.duration_seconds is None else round(execution.duration_seconds, 3)
        )
        fields["exit_code"] = execution.exit_code
        fields["error"] = _excerpt(execution.error) or None
    job = event.job
    if job is not None:
        fields["name"] = job.name
        fields["target"] = job.target
        fields["trigger"] = job.trigger.describe()
        fields["next_run_time"] = _iso(job.next_run_time)
        fields["paused"] = job.paused
    return {key: value for key, value in fields.items() if value is not None}


class EventLogger:
    """An EventBus listener writing one log line per engine event.

    It builds the record itself rather than calling `Logger.log`, which would walk the
    stack for the caller's file and line (`findCaller`): nothing we format shows them,
    and every job added is one event, so this runs once per schedule-job request."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(EVENT_LOGGER)

    def __call__(self, event: Event) -> None:
        text, level = _EVENT_TEXT.get(event.kind, (event.kind, logging.INFO))
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        fields = {"fields": event_fields(event)}
        logger.handle(
            logger.makeRecord(logger.name, level, __file__, 0, text, (), None, extra=fields)
        )


def install_event_log(app: Sanic[Any, Any]) -> None:
    """Log the engine's events from its first step (the listener is subscribed before
    the engine starts), and say where the service listens and which store it uses
    (password masked)."""
    app.ctx.event_listeners.append(EventLogger())

    async def announce(app: Sanic[Any, Any]) -> None:
        settings: Settings = app.ctx.settings
        store = app.ctx.store
        logging.getLogger("cronwell.api").info(
            "serving",
            extra={
                "fields": {
                    "url": f"http://{settings.host}:{settings.port}",
                    "store": masked(settings.store_url),
                    "backend": getattr(store, "backend", None),
                    "script_roots": ":".join(str(r) for r in settings.script_roots),
                    "timezone": settings.timezone,
                    "pool_size": settings.pool_size,
                }
            },
        )

    app.register_listener(announce, "after_server_start")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


#: a logfmt value that needs no quoting (and is printable, checked apart)
_BARE_VALUE = re.compile(r'[^ "=\\]+')


def _logfmt_value(value: Any) -> str:
    """The value as logfmt text: JSON's spelling for non-strings, strings bare when
    they can be. The common types skip json.dumps (eleven values per event line)."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if _BARE_VALUE.fullmatch(text) and text.isprintable():
        return text
    return json.dumps(text)


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class KeyValueFormatter(logging.Formatter):
    """`time=... level=INFO logger=cronwell.events msg="job added" job_id=...`"""

    def format(self, record: logging.LogRecord) -> str:
        pairs = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in pairs.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    """One stderr handler on the root logger; Sanic's loggers propagate into it."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_json else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in SANIC_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
