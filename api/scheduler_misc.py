"""`/api/scheduler/available-jobs`, `/api/scheduler/stats`, `/api/scheduler/health`."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, permissions, schemas, views
from api.openapi import documented
from api.storecalls import store_health
from api.validation import QueryParam, parse_query
from engine.model import Status
from jobs.registry import available_jobs
from stores.base import Store

bp = Blueprint("scheduler_misc", url_prefix="/api/scheduler")

STATS_QUERY = (QueryParam("user_id", "object_id", "only this user's jobs and executions"),)


@bp.get("/available-jobs")
@documented(response=schemas.AVAILABLE_JOBS)
async def list_available_jobs(request: Request) -> HTTPResponse:
    """The job classes a job may name in job_class_string, with their arguments."""
    ctx = request.app.ctx
    if getattr(ctx, "available_jobs", None) is None:
        ctx.available_jobs = available_jobs()  # imports every class once per app
    jobs: list[dict[str, Any]] = ctx.available_jobs
    return context.reply(
        views.success("Available jobs retrieved successfully", total=len(jobs), jobs=jobs)
    )


def compute_stats(store: Store, owner: str | None) -> dict[str, Any]:
    """The documented counters. failed_executions counts failed and timed-out runs;
    success_rate = completed / (completed + failed + timeout) * 100, rounded to 2
    places, 0 when nothing has finished that way yet."""
    jobs = store.count_jobs(owner)
    by_status = store.execution_stats(owner)
    completed = by_status.get(Status.COMPLETED, 0)
    failed = by_status.get(Status.FAILED, 0) + by_status.get(Status.TIMEOUT, 0)
    finished = completed + failed
    return {
        "total_jobs": jobs.total,
        "enabled_jobs": jobs.enabled,
        "paused_jobs": jobs.paused,
        "total_executions": sum(by_status.values()),
        "completed_executions": completed,
        "failed_executions": failed,
        "success_rate": round(completed / finished * 100, 2) if finished else 0.0,
        "executions_by_status": {s.value: by_status.get(s.value, 0) for s in Status},
    }


@bp.get("/stats")
@documented(query=STATS_QUERY, response=schemas.STATS)
async def stats(request: Request) -> HTTPResponse:
    """Job and execution counters, for everyone or one (existing) user."""
    owner = parse_query(request.get_args(keep_blank_values=True), STATS_QUERY).get("user_id")
    store = context.store(request)
    if owner is not None:
        await context.in_store(request, permissions.visible_user, request, owner)
    else:
        owner = permissions.owner_filter(request)  # a user's stats are their own
    counters = await context.off_loop(request, lambda: compute_stats(store, owner))
    return context.reply(views.success("Stats retrieved successfully", stats=counters))


@bp.get("/health")
@documented(response=schemas.SCHEDULER_HEALTH, unhealthy_same_shape=True)
async def scheduler_health(request: Request) -> HTTPResponse:
    """Whether the engine is running (503 when it is not) and its store answers
    (`degraded` when not, still 200: the engine goes on); needs no API key."""
    running = bool(request.app.ctx.scheduler and request.app.ctx.scheduler.running)
    now = views.iso(context.now(request))
    if running:
        store = await store_health(request)
        if store != "ok":
            message = "Scheduler is running; its store does not answer (locked, slow or away)"
            body = {"status": "degraded", "message": message, "store": store, "timestamp": now}
            return context.reply(body)
        body = {"status": "healthy", "message": "Scheduler is running", "store": store}
        return context.reply({**body, "timestamp": now})
    body = {"status": "unhealthy", "message": "Scheduler is not running", "timestamp": now}
    return context.reply(body, 503)
