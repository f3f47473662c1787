"""Response schemas for the OpenAPI document: what each operation answers, exactly.

Records (a job on each surface, an execution, a user, a server, stats) are components;
each operation's answer is its surface's envelope around them (`api.views` builds
those answers, so the two change together and the schemathesis run in the test suite
checks every answer against these). Objects are closed (`additionalProperties: false`)
and every key the views always write is required, so a renamed or dropped field fails
the conformance check instead of passing as "an object".
"""

from __future__ import annotations

from typing import Any

from engine.model import Status

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
NUMBER: dict[str, Any] = {"type": "number"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
ANY: dict[str, Any] = {}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def closed(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object of exactly these keys, all required but `optional` ones."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def array_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


_CRON = {name: nullable(STRING) for name in ("minute", "hour", "day_of_month", "month")}
_CRON.update({name: nullable(STRING) for name in ("day_of_week", "week")})

#: a job's trigger in words and as data (`api.schedules.schedule`); the keys after
#: `description` depend on the kind of trigger
SCHEDULE = closed(
    {
        "kind": {"type": "string", "enum": ["cron", "interval", "date"]},
        "description": STRING,
        "cron": nullable(STRING),
        "second": STRING,
        **_CRON,
        "interval_seconds": NUMBER,
        "anchor": nullable(TIME),
        "run_date": nullable(TIME),
        "timezone": STRING,
        "start_date": nullable(TIME),
        "end_date": nullable(TIME),
        "jitter_seconds": NUMBER,
    },
    optional=(
        "cron", "second", *_CRON, "interval_seconds", "anchor", "run_date",
    ),
)  # fmt: skip

#: a job's workflow fields (`api.workflow.job_view`), on both surfaces
_WORKFLOW = {
    "overlap": {"type": "string", "enum": ["skip", "queue", "replace", "allow"]},
    "on_success": array_of(STRING),
    "on_failure": array_of(STRING),
    "notify": nullable({"type": "object"}),
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": closed({"error": STRING}),
    "Detail": closed({"detail": STRING}),
    "ScriptJob": closed(
        {
            "job_id": STRING,
            "name": STRING,
            "next_run_time": nullable(TIME),
            "trigger": STRING,
            "executor": STRING,
            "pending": BOOLEAN,
            "is_enabled": BOOLEAN,
            "is_paused": BOOLEAN,
            "schedule": SCHEDULE,
            **_WORKFLOW,
        }
    ),
    "ScheduledScriptJob": closed(
        {
            "job_id": STRING,
            "name": STRING,
            "next_run_time": nullable(TIME),
            "job_type": {"type": "string", "enum": ["bash", "python"]},
            "script_path": STRING,
            "args": array_of(STRING),
        }
    ),
    "SchedulerJob": closed(
        {
            "_id": STRING,
            "user_id": nullable(STRING),
            "job_class_string": STRING,
            "name": STRING,
            "description": STRING,
            **_CRON,
            "cron": nullable(STRING),
            "interval_seconds": nullable(NUMBER),
            "run_date": nullable(TIME),
            "start_date": nullable(TIME),
            "end_date": nullable(TIME),
            "jitter_seconds": NUMBER,
            "pub_args": array_of(ANY),
            "pub_kwargs": {"type": "object"},
            "is_enabled": BOOLEAN,
            "is_paused": BOOLEAN,
            "created_at": nullable(TIME),
            "updated_at": nullable(TIME),
            "last_run_time": nullable(TIME),
            "next_run_time": nullable(TIME),
            "total_executions": {"type": "integer", "minimum": 0},
            "timezone": STRING,
            "job_type": {"type": "string", "enum": ["class", "bash", "python"]},
            "timeout": nullable(NUMBER),
            "max_instances": INTEGER,
            "misfire_grace_time": nullable(NUMBER),
            "coalesce": BOOLEAN,
            "retries": INTEGER,
            "retry_delay": NUMBER,
            "retry_backoff": {"type": "string", "enum": ["fixed", "exponential"]},
            "history_limit": nullable(INTEGER),
            "schedule": SCHEDULE,
            "env": array_of(STRING),
            **_WORKFLOW,
        }
    ),
    "Execution": closed(
        {
            "_id": STRING,
            "job_id": STRING,
            "user_id": nullable(STRING),
            "job_name": STRING,
            "job_class_string": STRING,
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "output": STRING,
            "error": nullable(STRING),
            "started_at": nullable(TIME),
            "completed_at": nullable(TIME),
            "created_at": nullable(TIME),
            "return_value": ANY,
            "exit_code": nullable(INTEGER),
            "duration_seconds": nullable(NUMBER),
            "attempt": INTEGER,
            "retry_of": nullable(STRING),
            "reason": nullable(STRING),
            "scheduled_for": nullable(TIME),
            "node": nullable(STRING),
            "overlap_decision": nullable(STRING),
            "triggered_by": nullable(STRING),
            "chained": array_of({"type": "object"}),
            "notifications": array_of({"type": "object"}),
        }
    ),
    "User": closed(
        {
            "_id": STRING,
            "name": STRING,
            "email": STRING,
            "role": STRING,
            "created_at": nullable(TIME),
            "updated_at": nullable(TIME),
        }
    ),
    "Server": closed(
        {
            "_id": STRING,
            "user_id": STRING,
            "name": STRING,
            "hostname": STRING,
            "port": INTEGER,
            "status": STRING,
            "connection_name": STRING,
            "instance_url": STRING,
            "username": STRING,
            "has_password": BOOLEAN,
            "last_check": {"type": "object"},
            "last_check_at": nullable(TIME),
            "created_at": nullable(TIME),
            "updated_at": nullable(TIME),
        }
    ),
    "AvailableJob": closed(
        {
            "class_string": STRING,
            "name": STRING,
            "description": STRING,
            "arguments": array_of(
                closed(
                    {
                        "name": STRING,
                        "type": STRING,
                        "description": STRING,
                        "required": BOOLEAN,
                        "source": {"type": "string", "enum": ["pub_args", "pub_kwargs"]},
                        "default": ANY,
                    }
                )
            ),
        }
    ),
    "Stats": closed(
        {
            "total_jobs": INTEGER,
            "enabled_jobs": INTEGER,
            "paused_jobs": INTEGER,
            "total_executions": INTEGER,
            "completed_executions": INTEGER,
            "failed_executions": INTEGER,
            "success_rate": {"type": "number", "minimum": 0, "maximum": 100},
            "executions_by_status": closed({s.value: INTEGER for s in Status}),
        }
    ),
}


# -- the answers, per operation --------------------------------------------------------
def success(**rest: dict[str, Any]) -> dict[str, Any]:
    """The scheduler surface's envelope (`views.success`) with these keys after it."""
    return closed({"status": {"type": "string", "enum": ["success"]}, "message": STRING, **rest})


def listing(record: str) -> dict[str, Any]:
    return success(total=INTEGER, data=array_of(ref(record)))


MESSAGE = closed({"message": STRING})
SCHEDULED = closed({"message": STRING, "job": ref("ScheduledScriptJob")})
SCRIPT_JOBS = closed({"count": INTEGER, "jobs": array_of(ref("ScriptJob"))})
SCRIPT_JOB = closed({"job": ref("ScriptJob")})
SCRIPTS_HEALTH = closed(
    {
        "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
        "scheduler_running": BOOLEAN,
        "store": {"type": "string", "enum": ["ok", "degraded"]},
    },
    optional=("store",),  # not asked when the engine is down
)
SCHEDULER_HEALTH = closed(
    {
        "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
        "message": STRING,
        "store": {"type": "string", "enum": ["ok", "degraded"]},
        "timestamp": TIME,
    },
    optional=("store",),  # not asked when the engine is down
)

USER_ID = success(user_id=STRING)
USER = success(data=ref("User"))
USERS = listing("User")
USER_DELETED = success(user_id=STRING, jobs_removed=INTEGER, servers_removed=INTEGER)
SERVER_ID = success(server_id=STRING)
SERVER = success(data=ref("Server"))
SERVERS = listing("Server")
JOB_ID = success(job_id=STRING)
JOB_WITH_DATA = success(job_id=STRING, data=ref("SchedulerJob"))
JOB = success(data=ref("SchedulerJob"))
JOBS = listing("SchedulerJob")
EXECUTION_STARTED = success(execution_id=STRING)
EXECUTIONS = success(total=INTEGER, limit=INTEGER, offset=INTEGER, data=array_of(ref("Execution")))
EXECUTION = success(data=ref("Execution"))
EXECUTION_CANCELLED = success(execution_id=STRING, data=ref("Execution"))
AVAILABLE_JOBS = success(total=INTEGER, jobs=array_of(ref("AvailableJob")))
STATS = success(stats=ref("Stats"))
BACKFILL = success(job_id=STRING, total=INTEGER, data=array_of(ref("Execution")))
NEXT_RUNS = success(
    job_id=STRING,
    timezone=STRING,
    is_enabled=BOOLEAN,
    is_paused=BOOLEAN,
    count=INTEGER,
    total=INTEGER,
    data=array_of(closed({"fire_time": TIME, "local_time": TIME, "occurrence": TIME})),
)
KEY_CREATED = success(key_id=STRING, api_key=STRING)
KEYS = success(
    total=INTEGER,
    data=array_of(
        closed(
            {
                "key_id": STRING,
                "name": STRING,
                "prefix": STRING,
                "created_at": TIME,
                "last_used_at": nullable(TIME),
            }
        )
    ),
)
KEY_REVOKED = success(key_id=STRING)
AUDIT = success(
    total=INTEGER,
    limit=INTEGER,
    offset=INTEGER,
    data=array_of(
        closed(
            {
                "_id": STRING,
                "time": TIME,
                "user_id": nullable(STRING),
                "key_id": nullable(STRING),
                "method": STRING,
                "path": STRING,
                "resource_id": nullable(STRING),
                "status_code": INTEGER,
                "client": nullable(STRING),
            }
        )
    ),
)
#: Server-Sent Events (`id:`, `event:`, `data:` lines; see the README)
EVENT_STREAM: dict[str, Any] = {"type": "string"}
#: the Prometheus text exposition format
PROMETHEUS_TEXT: dict[str, Any] = {"type": "string"}
NODES = success(
    total=INTEGER,
    nodes=array_of(
        closed(
            {
                "node_id": STRING,
                "started_at": TIME,
                "last_heartbeat": TIME,
                "lease_seconds": NUMBER,
                "alive": BOOLEAN,
                "running": {"type": "integer", "minimum": 0},
                "this_node": BOOLEAN,
            }
        )
    ),
)
OPENAPI_DOCUMENT = {
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {"openapi": STRING, "info": {"type": "object"}, "paths": {"type": "object"}},
}
