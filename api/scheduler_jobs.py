"""`/api/scheduler/jobs` and `/api/scheduler/users/<id>/jobs`: cron jobs of job classes.

Every job is listed here, including the scripts surface's one-off jobs (cron fields
null, `job_class_string` like `bash:/path`), which can be paused, resumed, run, edited
(name, description, args) and deleted from this surface too.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, job_lists, permissions, schedules, schemas, views, workflow
from api.job_env import FIELD_DESCRIPTION, encrypted_env
from api.limits import MAX_SECONDS
from api.list_answers import answer as list_answer
from api.openapi import documented, links_to
from api.validation import Body, Field, QueryParam, any_job_id, object_id, parse_query
from engine.errors import InvalidField, InvalidInput, JobNotFound, UserNotFound
from engine.ids import new_id
from engine.model import Job, JobKind, Surface
from jobs.registry import resolve_job_class

bp = Blueprint("scheduler_jobs", url_prefix="/api/scheduler")

JOB_LINKS = links_to(
    "/job_id",
    "job_id",
    "scheduler_jobs.get_job.get",
    "scheduler_jobs.update_job.put",
    "scheduler_jobs.delete_job.delete",
    "scheduler_jobs.pause_job.patch",
    "scheduler_jobs.resume_job.patch",
    "scheduler_jobs.run_job.post",
    "scripts.get_job.get",
)
EXECUTION_LINKS = links_to(
    "/execution_id",
    "execution_id",
    "executions.get_execution.get",
    "executions.cancel_execution.post",
)

_CRON_EXAMPLES = {
    "minute": "0",
    "hour": "9",
    "day_of_month": "*",
    "month": "*",
    "day_of_week": "*",
    "week": "*",
}


def _job_fields(*, create: bool) -> tuple[Field, ...]:
    # the seed's cron fields are one of four kinds of schedule (api/schedules.py):
    # required only when that kind is the one sent
    cron = tuple(
        Field(
            name,
            "cron",
            example=example,
            max_length=200,
            description="required with the other cron fields"
            if name in schedules.SEED_CRON_REQUIRED
            else 'default "*"',
        )
        for name, example in _CRON_EXAMPLES.items()
    )
    return (
        Field("user_id", "string", required=create, example="507f1f77bcf86cd799439011"),
        Field("job_class_string", "string", required=create, example="jobs.echo.EchoJob"),
        Field("name", "string", required=create, max_length=200, example="Daily Echo Job"),
        Field(
            "description",
            "string",
            allow_empty=True,
            max_length=2000,
            example="Runs echo job daily",
        ),
        *cron,
        *schedules.KIND_FIELDS,
        *schedules.WINDOW_FIELDS,
        Field("pub_args", "array", example=["arg1", "arg2"]),
        Field("pub_kwargs", "object", example={"key": "value"}),
        Field("timezone", "string", max_length=100, description="IANA zone; default the service's"),
        Field("is_enabled", "boolean", description="default true"),
        Field("env", "object", example={"API_TOKEN": "s3cret"}, description=FIELD_DESCRIPTION),
        *POLICY_FIELDS,
        *workflow.FIELDS,
    )


#: how a job runs, beyond the seed's fields; settable on any job, both surfaces' alike
POLICY_FIELDS = (
    Field(
        "timeout",
        "number",
        minimum=0,
        maximum=MAX_SECONDS,
        description="seconds a run may take (at most a year); 0 = no limit",
    ),
    Field("max_instances", "integer", minimum=1, maximum=1000, description="default 1"),
    Field(
        "misfire_grace_time",
        "number",
        minimum=0,
        maximum=MAX_SECONDS,
        description="seconds a fire may start late (at most a year); default "
        "CRONWELL_MISFIRE_GRACE",
    ),
    Field("coalesce", "boolean", description="several missed fires run once; default true"),
    Field("retries", "integer", minimum=0, maximum=100, description="default 0"),
    Field(
        "retry_delay",
        "number",
        minimum=0,
        maximum=MAX_SECONDS,
        description="seconds before a retry (at most a year); default 0",
    ),
    Field("retry_backoff", "string", max_length=20, description='"fixed" or "exponential"'),
    Field(
        "history_limit",
        "integer",
        minimum=1,
        maximum=1_000_000_000,
        nullable=True,
        description="keep this job's newest N executions; older finished ones are deleted "
        "in the background; null = keep all (the default; CRONWELL_HISTORY_DAYS still applies)",
    ),
)
_BACKOFFS = ("fixed", "exponential")


def _policy(values: dict[str, Any]) -> dict[str, Any]:
    """Job attribute values for the policy fields that were sent."""
    policy = {f.name: values[f.name] for f in POLICY_FIELDS if f.name in values}
    if "timeout" in policy:
        policy["timeout"] = policy["timeout"] or None
    if policy.get("retry_backoff", "fixed") not in _BACKOFFS:
        raise InvalidField("retry_backoff", f"retry_backoff must be one of {', '.join(_BACKOFFS)}")
    return policy


CREATE_BODY = Body(_job_fields(create=True))
UPDATE_BODY = Body(_job_fields(create=False))


def check_required_arguments(class_string: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse at schedule time what the class's metadata says it cannot run without, so
    a job missing (say) EmailNotificationJob's recipient is a 422 now, not a failed
    execution at 9 am. Types and extra arguments stay the class's own to check."""
    arguments = resolve_job_class(class_string).arguments
    positional = [a for a in arguments if a.source == "pub_args"]
    for index, argument in enumerate(positional):
        if argument.required and len(args) <= index:
            raise InvalidField(
                "pub_args", f"{class_string} needs pub_args[{index}]: {argument.name}"
            )
    for argument in arguments:
        if argument.source == "pub_kwargs" and argument.required and argument.name not in kwargs:
            raise InvalidField("pub_kwargs", f"{class_string} needs pub_kwargs.{argument.name}")


async def _owner_id(request: Request, user_id: str) -> str:
    """A user_id from a body: malformed 400, another user's for a user key 403,
    unknown 404 (UserNotFound)."""
    permissions.check_assignable(request, object_id(user_id, "user"), "schedule a job")
    store = context.store(request)
    await context.in_store(request, store.get_user, user_id)
    return user_id


@bp.post("/jobs")
@documented(body=CREATE_BODY, response=schemas.JOB_WITH_DATA, links=JOB_LINKS)
async def create_job(request: Request) -> HTTPResponse:
    """Schedule a job class for a user: on cron fields, a cron line, an interval or a date."""
    values = CREATE_BODY.parse(request.body)
    settings = context.settings(request)
    trigger = schedules.trigger_for_create(values, settings.timezone, context.now(request))
    owner = await _owner_id(request, values["user_id"])
    permissions.check_job_class(request, values["job_class_string"])
    check_required_arguments(
        values["job_class_string"], values.get("pub_args", []), values.get("pub_kwargs", {})
    )
    job = Job(
        id=new_id(),
        name=values["name"].strip(),
        kind=JobKind.CLASS,
        target=values["job_class_string"],
        trigger=trigger,
        args=values.get("pub_args", []),
        kwargs=values.get("pub_kwargs", {}),
        description=values.get("description", ""),
        owner=owner,
        surface=Surface.SCHEDULER,
        enabled=values.get("is_enabled", True),
        env=encrypted_env(values.get("env", {}), context.secrets(request)),
        **{
            "misfire_grace_time": settings.misfire_grace_time,
            **_policy(values),
            **workflow.job_values(values),
        },
    )
    scheduler = context.scheduler(request)
    added = await context.command(scheduler.add_job(job))
    await _drop_if_owner_gone(request, added)
    return context.reply(
        views.success(
            f"Job '{added.name}' created successfully",
            job_id=added.id,
            data=views.scheduler_job(added),
        )
    )


async def _drop_if_owner_gone(request: Request, job: Job) -> None:
    """The owner was deleted while the job was being added: take the job back out, so a
    deleted user never keeps a firing job (users.delete_user sweeps the other order)."""
    if job.owner is None:
        return
    try:
        store = context.store(request)
        await context.in_store(request, store.get_user, job.owner)
    except UserNotFound:
        try:
            await context.command(context.scheduler(request).remove_job(job.id))
        except JobNotFound:
            pass
        raise


@bp.get("/jobs")
@documented(response=schemas.JOBS)
async def list_jobs(request: Request) -> HTTPResponse:
    """Every job of both surfaces the key may see, oldest first."""
    return await _listing(request, permissions.owner_filter(request))


@bp.get("/users/<user_id>/jobs")
@documented(response=schemas.JOBS)
async def jobs_of_user(request: Request, user_id: str) -> HTTPResponse:
    """The jobs one (existing) user owns."""
    await context.in_store(request, permissions.visible_user, request, object_id(user_id, "user"))
    return await _listing(request, user_id)


async def _listing(request: Request, owner: str | None) -> HTTPResponse:
    """The jobs of `owner` (every job for None): remembered, or read off the loop."""
    return await list_answer(request, job_lists.SCHEDULER_JOBS, owner)


@bp.get("/jobs/<job_id>")
@documented(response=schemas.JOB)
async def get_job(request: Request, job_id: str) -> HTTPResponse:
    """One job."""
    job = await context.in_store(request, permissions.visible_job, request, any_job_id(job_id))
    return context.reply(views.success("Job retrieved successfully", data=views.scheduler_job(job)))


@bp.put("/jobs/<job_id>")
@documented(body=UPDATE_BODY, partial=True, response=schemas.JOB_WITH_DATA)
async def update_job(request: Request, job_id: str) -> HTTPResponse:
    """Change any fields of a job; changing its schedule or timezone reschedules it."""
    current = await context.in_store(request, permissions.visible_job, request, any_job_id(job_id))
    values = UPDATE_BODY.parse(request.body, partial=True)
    changes = _changes(request, current, values)
    if "user_id" in values:
        changes["owner"] = await _owner_id(request, values["user_id"])
    updated = await context.command(context.scheduler(request).modify_job(current.id, **changes))
    return context.reply(
        views.success(
            "Job updated successfully", job_id=updated.id, data=views.scheduler_job(updated)
        )
    )


def _changes(request: Request, current: Job, values: dict[str, Any]) -> dict[str, Any]:
    """Job field changes for a validated partial update of `current` (but its owner,
    which the handler checks in the store)."""
    changes: dict[str, Any] = {}
    for field, attr in (
        ("name", "name"),
        ("description", "description"),
        ("pub_kwargs", "kwargs"),
        ("is_enabled", "enabled"),
    ):
        if field in values:
            changes[attr] = values[field].strip() if field == "name" else values[field]
    if "pub_args" in values:
        changes["args"] = values["pub_args"]
    if "env" in values:  # the whole set: names left out are removed
        changes["env"] = encrypted_env(values["env"], context.secrets(request))
    changes.update(_policy(values))
    changes.update(workflow.job_values(values))
    schedule = [name for name in schedules.SCHEDULE_FIELDS if name in values]
    if current.kind != JobKind.CLASS:
        _check_script_job_changes(current, values, schedule)
    else:
        if "job_class_string" in values:
            permissions.check_job_class(request, values["job_class_string"])
            changes["target"] = values["job_class_string"]
        if {"job_class_string", "pub_args", "pub_kwargs"} & set(values):
            check_required_arguments(
                changes.get("target", current.target),
                changes.get("args", current.args),
                changes.get("kwargs", current.kwargs),
            )
        trigger = schedules.trigger_for_update(values, current.trigger, context.now(request))
        if trigger is not None:
            changes["trigger"] = trigger
    return changes


def _check_script_job_changes(job: Job, values: dict[str, Any], schedule: list[str]) -> None:
    """A scripts-surface job runs one script once: its schedule and target stay put."""
    fixed = [*schedule, *(["job_class_string"] if "job_class_string" in values else [])]
    if fixed:
        raise InvalidInput(
            f"Job {job.id} is a one-off {job.kind} script job; "
            f"{', '.join(fixed)} cannot be changed (schedule it again on /api/schedule-job)"
        )
    bad = [a for a in values.get("pub_args", []) if not isinstance(a, str)]
    if bad:
        raise InvalidInput(f"pub_args of a {job.kind} script job must all be strings")


@bp.delete("/jobs/<job_id>")
@documented(response=schemas.JOB_ID)
async def delete_job(request: Request, job_id: str) -> HTTPResponse:
    """Unschedule and delete a job; its executions stay as history."""
    permissions.check_job(request, any_job_id(job_id))
    await context.command(context.scheduler(request).remove_job(job_id))
    return context.reply(views.success("Job deleted successfully", job_id=job_id))


@bp.patch("/jobs/<job_id>/pause")
@documented(response=schemas.JOB_ID)
async def pause_job(request: Request, job_id: str) -> HTTPResponse:
    """Stop a job firing (next_run_time becomes null) without deleting it."""
    permissions.check_job(request, any_job_id(job_id))
    await context.command(context.scheduler(request).pause_job(job_id))
    return context.reply(views.success("Job paused successfully", job_id=job_id))


@bp.patch("/jobs/<job_id>/resume")
@documented(response=schemas.JOB_ID)
async def resume_job(request: Request, job_id: str) -> HTTPResponse:
    """Let a paused job fire again, from now on."""
    permissions.check_job(request, any_job_id(job_id))
    await context.command(context.scheduler(request).resume_job(job_id))
    return context.reply(views.success("Job resumed successfully", job_id=job_id))


NEXT_RUNS_QUERY = (
    QueryParam(
        "count", "integer", "how many fire times (1-100)", default=5, minimum=1, maximum=100
    ),
)


@bp.get("/jobs/<job_id>/next-runs")
@documented(query=NEXT_RUNS_QUERY, response=schemas.NEXT_RUNS)
async def next_runs(request: Request, job_id: str) -> HTTPResponse:
    """The job's next fire times, in UTC and on its own clock (none while paused or disabled)."""
    count = parse_query(request.get_args(keep_blank_values=True), NEXT_RUNS_QUERY)["count"]
    job = await context.in_store(request, permissions.visible_job, request, any_job_id(job_id))
    return context.reply(schedules.upcoming(job, count))


@bp.post("/jobs/<job_id>/run")
@documented(response=schemas.EXECUTION_STARTED, links=EXECUTION_LINKS)
async def run_job(request: Request, job_id: str) -> HTTPResponse:
    """Run a job now (even when paused); answers the new execution's id."""
    permissions.check_job(request, any_job_id(job_id))
    execution = await context.command(context.scheduler(request).run_job_now(job_id))
    return context.reply(views.success("Job execution started", execution_id=execution.id))


BACKFILL_BODY = Body(
    (
        Field(
            "start",
            "string",
            required=True,
            example="2030-01-01T00:00:00",
            description="ISO 8601; without an offset it is on the job's clock (its timezone)",
        ),
        Field(
            "end",
            "string",
            required=True,
            example="2030-01-02T00:00:00",
            description="ISO 8601, inclusive, not in the future; at most 1,000 occurrences "
            "may fall between start and end",
        ),
    )
)


@bp.post("/jobs/<job_id>/backfill")
@documented(body=BACKFILL_BODY, response=schemas.BACKFILL)
async def backfill(request: Request, job_id: str) -> HTTPResponse:
    """Record and run, oldest first, the occurrences of the job's schedule between start
    and end (one at a time, or up to max_instances with overlap allow)."""
    job = await context.in_store(request, permissions.visible_job, request, any_job_id(job_id))
    values = BACKFILL_BODY.parse(request.body)
    start = schedules.parse_time("start", values["start"], job.timezone)
    end = schedules.parse_time("end", values["end"], job.timezone)
    runs = await context.command(context.scheduler(request).backfill(job.id, start, end))
    message = (
        f"Backfill of {len(runs)} occurrence(s) of job {job.id} started"
        if runs
        else f"No occurrence of job {job.id}'s schedule fell between start and end"
    )
    return context.reply(
        views.success(
            message, job_id=job.id, total=len(runs), data=[views.execution(e) for e in runs]
        )
    )
