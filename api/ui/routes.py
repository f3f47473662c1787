"""The dashboard's job pages: `/` and `/ui` redirect to `/ui/`; the jobs list, a job,
the charts, the job forms, an execution; and `/ui/static/` files.

Every read goes through the same owner checks and filters as the JSON API's (a user's
key sees its own records; another user's job or execution is a 404, as over the API)
and runs on the app's reader thread, as the API's lists do. Pages change nothing:
every action a page offers is a call from ui.js to a JSON endpoint, carrying the
session's CSRF token (checked by api/ui/session.py's middleware), so permissions and
the audit trail apply to it unchanged.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect

from api import context, permissions, views
from api.limits import MAX_OFFSET
from api.scheduler_jobs import POLICY_FIELDS
from api.ui import charts, reads, rows
from api.ui.render import page
from api.ui.viewer import Viewer, ui_page
from api.validation import any_job_id, object_id
from engine.errors import InvalidInput
from engine.model import Execution

STATIC = Path(__file__).resolve().parent / "static"
EVENTS_PATH = "/api/scheduler/events"

bp = Blueprint("ui", strict_slashes=True)
bp.static("/ui/static", STATIC, name="static")


# -- redirects ------------------------------------------------------------------------
@bp.get("/")
async def root(request: Request) -> HTTPResponse:
    return redirect("/ui/")


@bp.get("/ui")
async def ui_root(request: Request) -> HTTPResponse:
    return redirect("/ui/")


# -- jobs -----------------------------------------------------------------------------
def choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise InvalidInput(f"Unknown {name} {value!r} (one of: {', '.join(allowed)})")
    return value


@bp.get("/ui/")
@ui_page
async def jobs_page(request: Request, viewer: Viewer) -> HTTPResponse:
    owner = request.args.get("user") or None
    if owner is not None and owner != reads.NO_OWNER:
        # another user's id answers as a missing one, as /api/scheduler/users/<id>/jobs
        await context.in_store(request, permissions.visible_user, request, object_id(owner, "user"))
    filters = reads.JobFilters(
        owner=owner,
        state=choice(request, "state", reads.JOB_STATES),
        kind=choice(request, "kind", reads.JOB_KINDS),
        q=(request.args.get("q") or "").strip(),
    )
    store = context.store(request)
    scope = permissions.owner_filter(request)
    page_number = whole(request, "page", 1) - 1
    latest = _latest_runs(request)
    started = time.perf_counter()
    listing = await context.off_loop(
        request, lambda: reads.job_list(store, filters, page_number, latest, scope)
    )
    request.ctx.ui_reads_ms = (time.perf_counter() - started) * 1000
    return page(
        request,
        "jobs.html",
        viewer=viewer,
        nav="jobs",
        listing=listing,
        filters=filters,
        states=reads.JOB_STATES,
        kinds=reads.JOB_KINDS,
        no_owner=reads.NO_OWNER,
        events_url=EVENTS_PATH,
        job_rows=rows.job_rows,
        page_link=lambda number: _with_page(request, number),
    )


@bp.get("/ui/jobs/<job_id>")
@ui_page
async def job_page(request: Request, viewer: Viewer, job_id: str) -> HTTPResponse:
    offset = whole(request, "offset", 0)
    store = context.store(request)
    job = await context.in_store(request, permissions.visible_job, request, any_job_id(job_id))
    now = context.now(request)
    data = await context.off_loop(request, lambda: reads.job_page(store, job, now, offset))
    recent = data.recent.executions
    return page(
        request,
        "job.html",
        viewer=viewer,
        nav="jobs",
        p=data,
        now=now,
        per_page=reads.EXECUTIONS_PER_PAGE,
        charts=chart_set(recent, now, data.recent.capped),
        policy_fields=POLICY_FIELDS,
        events_url=f"{EVENTS_PATH}?{urlencode({'job_id': job.id})}",
    )


def _latest_runs(request: Request) -> reads.LatestRuns:
    """The app's memory of each job's newest finished execution (one per app)."""
    found: reads.LatestRuns | None = getattr(request.app.ctx, "ui_latest_runs", None)
    if found is None:
        found = request.app.ctx.ui_latest_runs = reads.LatestRuns()
    return found


def whole(request: Request, name: str, minimum: int) -> int:
    """A whole-number query parameter (a page, an offset), within the API's bounds."""
    text = request.args.get(name) or str(minimum)
    if not text.isdigit() or not minimum <= int(text) <= MAX_OFFSET:
        raise InvalidInput(f"{name} must be a whole number {minimum}..{MAX_OFFSET}, not {text!r}")
    return int(text)


def _with_page(request: Request, number: int) -> str:
    """The current query with another page number."""
    kept = [(k, v) for k, values in request.args.items() if k != "page" for v in values]
    return "?" + urlencode([*kept, ("page", str(number))])


def chart_set(recent: list[Execution], now: datetime, capped: bool) -> dict[str, Any]:
    day, week = timedelta(hours=1), timedelta(days=1)
    return {
        "day": charts.outcome_chart(
            "Runs in the last 24 hours, by outcome",
            charts.buckets(recent, now, day, 24, "h"),
        ),
        "week": charts.outcome_chart(
            "Runs in the last 7 days, by outcome", charts.buckets(recent, now, week, 7, "d")
        ),
        "lateness": charts.time_chart(
            "Lateness of scheduled runs, last 7 days",
            charts.series(recent, "lateness"),
            now,
            timedelta(days=7),
        ),
        "duration": charts.time_chart(
            "Duration of runs, last 7 days",
            charts.series(recent, "duration"),
            now,
            timedelta(days=7),
        ),
        "capped": capped,
        "cap": reads.CHART_CAP,
    }


@bp.get("/ui/charts")
@ui_page
async def charts_page(request: Request, viewer: Viewer) -> HTTPResponse:
    store = context.store(request)
    now = context.now(request)
    scope = permissions.owner_filter(request)
    recent = await context.off_loop(
        request, lambda: reads.recent_executions(store, now - timedelta(days=7), owner=scope)
    )
    return page(
        request,
        "charts.html",
        viewer=viewer,
        nav="charts",
        charts=chart_set(recent.executions, now, recent.capped),
    )


@bp.get("/ui/new-job")
@ui_page
async def new_job_page(request: Request, viewer: Viewer) -> HTTPResponse:
    kind = choice(request, "kind", ("class", "script")) or "class"
    store = context.store(request)
    scope = permissions.owner_filter(request)
    users = await context.in_store(request, reads.visible_users, store, scope)
    settings = context.settings(request)
    return page(
        request,
        "job_form.html",
        viewer=viewer,
        nav="new",
        kind=kind,
        job=None,
        users=users,
        policy_fields=POLICY_FIELDS,
        default_timezone=settings.timezone,
        script_roots=[str(r) for r in settings.script_roots],
    )


@bp.get("/ui/jobs/<job_id>/edit")
@ui_page
async def edit_job_page(request: Request, viewer: Viewer, job_id: str) -> HTTPResponse:
    store = context.store(request)
    job = await context.in_store(request, permissions.visible_job, request, any_job_id(job_id))
    scope = permissions.owner_filter(request)
    users = await context.in_store(request, reads.visible_users, store, scope)
    return page(
        request,
        "job_form.html",
        viewer=viewer,
        nav="jobs",
        kind="class" if job.kind == "class" else "script-edit",
        job=views.scheduler_job(job),
        users=users,
        policy_fields=POLICY_FIELDS,
        default_timezone=job.timezone,
        script_roots=[],
    )


# -- executions -----------------------------------------------------------------------
@bp.get("/ui/executions/<execution_id>")
@ui_page
async def execution_page(request: Request, viewer: Viewer, execution_id: str) -> HTTPResponse:
    store = context.store(request)
    wanted = object_id(execution_id, "execution")
    found = await context.in_store(request, permissions.visible_execution, request, wanted)
    data = await context.off_loop(request, lambda: reads.execution_page(store, found))
    return page(request, "execution.html", viewer=viewer, nav="jobs", p=data)
