"""The scripts surface: schedule a bash or python script for one date, list, get,
pause, resume and remove jobs, and health; errors as `{"error": ...}`.

Status codes are the document's (400 for every validation error, 404 for an unknown
job), plus 409 for a duplicate job_id without replace_existing, which the document does
not list but which is what the condition is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, job_lists, permissions, schedules, schemas, views, workflow
from api.job_env import FIELD_DESCRIPTION, encrypted_env
from api.list_answers import answer as list_answer
from api.openapi import documented, links_to
from api.storecalls import store_health
from api.validation import SCRIPT_JOB_ID, Body, Field
from engine.errors import InvalidField, JobExists, JobNotFound
from engine.model import Job, JobKind, Surface
from runners.paths import check_runnable, resolve_script

bp = Blueprint("scripts", url_prefix="/api")

SCRIPT_JOB_LINKS = links_to(
    "/job/job_id",
    "job_id",
    "scripts.get_job.get",
    "scripts.pause_job.put",
    "scripts.resume_job.put",
    "scripts.remove_job.delete",
    "scheduler_jobs.get_job.get",
)

SCHEDULE_BODY = Body(
    (
        Field(
            "job_id",
            "string",
            required=True,
            max_length=200,
            example="data_backup_job",
            description="letters, digits and _ . : @ - (one URL path segment)",
        ),
        Field("job_type", "string", required=True, example="bash", description="bash or python"),
        Field(
            "script_path",
            "string",
            required=True,
            max_length=4096,
            example="/opt/scripts/backup.sh",
            description="absolute path inside a configured script root",
        ),
        Field(
            "run_date",
            "string",
            required=True,
            example="2030-12-31T23:59:59",
            description="ISO 8601; without an offset it is in the configured timezone",
        ),
        Field("args", "strings", example=["--full", "--compress"]),
        Field("replace_existing", "boolean", example=False),
        *schedules.WINDOW_FIELDS,
        Field("env", "object", example={"API_TOKEN": "s3cret"}, description=FIELD_DESCRIPTION),
        *workflow.FIELDS,
    ),
    always_plural=True,
)
JOB_TYPES = (JobKind.BASH.value, JobKind.PYTHON.value)


def build_job(values: dict[str, Any], timezone: str, roots: tuple[Any, ...], now: datetime) -> Job:
    job_id, job_type, path = values["job_id"], values["job_type"], values["script_path"]
    if not SCRIPT_JOB_ID.match(job_id):
        raise InvalidField(
            "job_id",
            "job_id may hold only letters, digits and _ . : @ - (at most 200, "
            f"not starting with . : @ -): {job_id!r}",
        )
    if job_type not in JOB_TYPES:
        raise InvalidField("job_type", f"job_type must be 'bash' or 'python', not {job_type!r}")
    trigger = schedules.date_trigger(values, timezone, now)
    workflow_values = workflow.job_values(values)  # before the filesystem is looked at
    kind = JobKind(job_type)
    check_runnable(resolve_script(path, roots), kind)
    return Job(
        id=job_id,
        name=f"{job_type}:{path}",
        kind=kind,
        target=path,
        trigger=trigger,
        args=values.get("args", []),
        surface=Surface.SCRIPTS,
        **workflow_values,
    )


@bp.post("/schedule-job")
@documented(body=SCHEDULE_BODY, response=schemas.SCHEDULED, links=SCRIPT_JOB_LINKS)
async def schedule_job(request: Request) -> HTTPResponse:
    """Schedule a bash or python script to run once at run_date."""
    values = SCHEDULE_BODY.parse(request.body)
    settings = context.settings(request)
    job = build_job(values, settings.timezone, settings.script_roots, context.now(request))
    job.misfire_grace_time = settings.misfire_grace_time
    job.owner = _owner(request, job.id, values.get("replace_existing", False))
    job.env = encrypted_env(values.get("env", {}), context.secrets(request))
    scheduler = context.scheduler(request)
    added = await context.command(
        scheduler.add_job(job, replace=values.get("replace_existing", False))
    )
    return context.reply(
        {"message": "Job scheduled successfully", "job": views.scheduled_script_job(added)}
    )


def _owner(request: Request, job_id: str, replace: bool) -> str | None:
    """Whose the scheduled job is: the key's user, or, when it replaces a job, that
    job's owner (an admin replacing a user's job leaves it theirs). Job ids are one
    namespace: another user's job of the same id answers 409 as any taken id does, and
    replace_existing never replaces it."""
    who = permissions.principal(request)
    if who.admin and not replace:
        return who.user_id  # a taken id is the engine's 409; no read needed
    try:
        existing = context.store(request).get_job(job_id)
    except JobNotFound:
        return who.user_id
    if not permissions.may_see(request, existing.owner):
        raise JobExists(job_id)
    return existing.owner if replace else who.user_id


@bp.get("/jobs")
@documented(response=schemas.SCRIPT_JOBS)
async def list_jobs(request: Request) -> HTTPResponse:
    """Every job (both surfaces') the key may see, oldest first."""
    return await list_answer(request, job_lists.SCRIPT_JOBS, permissions.owner_filter(request))


@bp.get("/job/<job_id>")
@documented(response=schemas.SCRIPT_JOB)
async def get_job(request: Request, job_id: str) -> HTTPResponse:
    """One job."""
    job = await context.in_store(request, permissions.visible_job, request, job_id)
    return context.reply({"job": views.script_job(job)})


@bp.delete("/remove-job/<job_id>")
@documented(response=schemas.MESSAGE)
async def remove_job(request: Request, job_id: str) -> HTTPResponse:
    """Unschedule and delete a job."""
    permissions.check_job(request, job_id)
    await context.command(context.scheduler(request).remove_job(job_id))
    return context.reply({"message": f"Job {job_id} removed successfully"})


@bp.put("/pause-job/<job_id>")
@documented(response=schemas.MESSAGE)
async def pause_job(request: Request, job_id: str) -> HTTPResponse:
    """Stop a job firing without removing it."""
    permissions.check_job(request, job_id)
    await context.command(context.scheduler(request).pause_job(job_id))
    return context.reply({"message": f"Job {job_id} paused successfully"})


@bp.put("/resume-job/<job_id>")
@documented(response=schemas.MESSAGE)
async def resume_job(request: Request, job_id: str) -> HTTPResponse:
    """Let a paused job fire again."""
    permissions.check_job(request, job_id)
    await context.command(context.scheduler(request).resume_job(job_id))
    return context.reply({"message": f"Job {job_id} resumed successfully"})


@bp.get("/health")
@documented(response=schemas.SCRIPTS_HEALTH, unhealthy_same_shape=True)
async def health(request: Request) -> HTTPResponse:
    """Whether the engine is running (503 when it is not) and its store answers
    (`degraded` when not, still 200: the engine goes on); needs no API key."""
    running = bool(request.app.ctx.scheduler and request.app.ctx.scheduler.running)
    if not running:
        return context.reply({"status": "unhealthy", "scheduler_running": False}, 503)
    store = await store_health(request)
    status = "healthy" if store == "ok" else "degraded"
    return context.reply({"status": status, "scheduler_running": True, "store": store})
