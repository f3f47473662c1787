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

from api import context, schedules, views, workflow
from api.openapi import documented
from api.validation import SCRIPT_JOB_ID, Body, Field
from engine.errors import InvalidField
from engine.model import Job, JobKind, Surface
from runners.paths import check_runnable, resolve_script

bp = Blueprint("scripts", url_prefix="/api")

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
@documented(body=SCHEDULE_BODY)
async def schedule_job(request: Request) -> HTTPResponse:
    """Schedule a bash or python script to run once at run_date."""
    values = SCHEDULE_BODY.parse(request.body)
    settings = context.settings(request)
    job = build_job(values, settings.timezone, settings.script_roots, context.now(request))
    job.misfire_grace_time = settings.misfire_grace_time
    scheduler = context.scheduler(request)
    added = await context.command(
        scheduler.add_job(job, replace=values.get("replace_existing", False))
    )
    return context.reply(
        {"message": "Job scheduled successfully", "job": views.scheduled_script_job(added)}
    )


@bp.get("/jobs")
async def list_jobs(request: Request) -> HTTPResponse:
    """Every job (both surfaces'), oldest first."""
    store = context.store(request)

    def render() -> dict[str, Any]:
        jobs = store.list_jobs()
        return {"count": len(jobs), "jobs": [views.script_job(j) for j in jobs]}

    return context.reply(await context.off_loop(request, render))


@bp.get("/job/<job_id>")
async def get_job(request: Request, job_id: str) -> HTTPResponse:
    """One job."""
    return context.reply({"job": views.script_job(context.store(request).get_job(job_id))})


@bp.delete("/remove-job/<job_id>")
async def remove_job(request: Request, job_id: str) -> HTTPResponse:
    """Unschedule and delete a job."""
    await context.command(context.scheduler(request).remove_job(job_id))
    return context.reply({"message": f"Job {job_id} removed successfully"})


@bp.put("/pause-job/<job_id>")
async def pause_job(request: Request, job_id: str) -> HTTPResponse:
    """Stop a job firing without removing it."""
    await context.command(context.scheduler(request).pause_job(job_id))
    return context.reply({"message": f"Job {job_id} paused successfully"})


@bp.put("/resume-job/<job_id>")
async def resume_job(request: Request, job_id: str) -> HTTPResponse:
    """Let a paused job fire again."""
    await context.command(context.scheduler(request).resume_job(job_id))
    return context.reply({"message": f"Job {job_id} resumed successfully"})


@bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    """Whether the engine is running (503 when it is not); needs no API key."""
    running = bool(request.app.ctx.scheduler and request.app.ctx.scheduler.running)
    body = {"status": "healthy" if running else "unhealthy", "scheduler_running": running}
    return context.reply(body, 200 if running else 503)
