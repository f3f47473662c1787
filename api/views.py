"""One job model, two views: how jobs, executions, users and servers look on each surface.

Handlers call these and nothing else to serialise, so a field name lives in one place.
The scripts surface shows times in the job's own zone (as APScheduler does, `+00:00`
for UTC); the scheduler surface shows every time in UTC with its offset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.schedules import request_fields, schedule
from api.workflow import execution_view, job_view
from engine.model import Execution, Job, JobKind, Node
from stores.records import Server, User

CRON_FIELDS = ("minute", "hour", "day_of_month", "month", "day_of_week", "week")


def iso(value: datetime | None, zone: str = "UTC") -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC if zone == "UTC" else ZoneInfo(zone)).isoformat()


def job_class_string(kind: str, target: str) -> str:
    """`jobs.echo.EchoJob` for class jobs, `bash:/path` / `python:/path` for scripts."""
    return target if kind == JobKind.CLASS else f"{kind}:{target}"


def script_name(job: Job) -> str:
    """The scripts surface's `name`: `<job_type>:<target>` for every job, so a class job
    reads `class:jobs.echo.EchoJob` there."""
    return f"{job.kind}:{job.target}"


def cron_fields(job: Job) -> dict[str, str | None]:
    """The six cron fields of a cron job; all None for date (scripts) jobs."""
    spec = job.trigger.to_dict() if job.trigger.kind == "cron" else {}
    return {name: _text(spec.get(name)) for name in CRON_FIELDS}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# -- scripts surface -------------------------------------------------------------------
def script_job(job: Job) -> dict[str, Any]:
    """`GET /api/jobs` and `GET /api/job/<id>` entries."""
    return {
        "job_id": job.id,
        "name": script_name(job),
        "next_run_time": iso(job.next_run_time, job.timezone),
        "trigger": job.trigger.describe(),
        "executor": "default",
        "pending": False,
        "is_enabled": job.enabled,
        "is_paused": job.paused,
        "schedule": schedule(job.trigger),
        **job_view(job),
    }


def scheduled_script_job(job: Job) -> dict[str, Any]:
    """The `job` object in the `POST /api/schedule-job` answer."""
    return {
        "job_id": job.id,
        "name": script_name(job),
        "next_run_time": iso(job.next_run_time, job.timezone),
        "job_type": str(job.kind),
        "script_path": job.target,
        "args": list(job.args),
    }


# -- scheduler surface -----------------------------------------------------------------
def scheduler_job(job: Job) -> dict[str, Any]:
    """A job as the scheduler document lists it, plus `timezone` and `job_type`."""
    return {
        "_id": job.id,
        "user_id": job.owner,
        "job_class_string": job_class_string(job.kind, job.target),
        "name": job.name,
        "description": job.description,
        **cron_fields(job),
        **request_fields(job.trigger),
        "pub_args": list(job.args),
        "pub_kwargs": dict(job.kwargs),
        "is_enabled": job.enabled,
        "is_paused": job.paused,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "last_run_time": iso(job.last_run_time),
        "next_run_time": iso(job.next_run_time),
        "total_executions": job.total_executions,
        "timezone": job.timezone,
        "job_type": str(job.kind),
        "timeout": job.timeout,
        "max_instances": job.max_instances,
        "misfire_grace_time": job.misfire_grace_time,
        "coalesce": job.coalesce,
        "retries": job.retries,
        "retry_delay": job.retry_delay,
        "retry_backoff": job.retry_backoff,
        "history_limit": job.history_limit,
        **job_view(job),
        "schedule": schedule(job.trigger),
        "env": sorted(job.env),  # names only: the values are secrets
    }


def execution(e: Execution) -> dict[str, Any]:
    return {
        "_id": e.id,
        "job_id": e.job_id,
        "user_id": e.owner,
        "job_name": e.job_name,
        "job_class_string": job_class_string(e.job_kind, e.job_target),
        "status": str(e.status),
        "output": e.output,
        "error": e.error,
        "started_at": iso(e.started_at),
        "completed_at": iso(e.completed_at),
        "created_at": iso(e.created_at),
        "return_value": e.return_value,
        "exit_code": e.exit_code,
        "duration_seconds": e.duration_seconds,
        "attempt": e.attempt,
        "retry_of": e.retry_of,
        "reason": e.reason,
        "scheduled_for": iso(e.scheduled_for),
        "node": e.node,
        **execution_view(e),
    }


def node(n: Node, now: datetime, this_node: str | None) -> dict[str, Any]:
    return {
        "node_id": n.node_id,
        "started_at": iso(n.started_at),
        "last_heartbeat": iso(n.last_heartbeat),
        "lease_seconds": n.lease_seconds,
        "alive": n.alive(now),
        "running": n.running,
        "this_node": n.node_id == this_node,
    }


def user(u: User) -> dict[str, Any]:
    return {
        "_id": u.id,
        "name": u.name,
        "email": u.email,
        "role": u.role,
        "created_at": iso(u.created_at),
        "updated_at": iso(u.updated_at),
    }


def server(s: Server) -> dict[str, Any]:
    """Never the password: only whether one is stored."""
    return {
        "_id": s.id,
        "user_id": s.user_id,
        "name": s.name,
        "hostname": s.hostname,
        "port": s.port,
        "status": s.status,
        "connection_name": s.connection_name,
        "instance_url": s.instance_url,
        "username": s.username,
        "has_password": bool(s.password_encrypted),
        "last_check": s.last_check,
        "last_check_at": iso(s.last_check_at),
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
    }


def success(message: str, **rest: Any) -> dict[str, Any]:
    """The scheduler surface's envelope: status and message first, as documented."""
    return {"status": "success", "message": message, **rest}
