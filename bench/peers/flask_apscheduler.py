"""The peer `bench.api` measures: the stack the scripts seed describes, kept minimal.

Flask, APScheduler 3.11's BackgroundScheduler with its SQLAlchemyJobStore on a SQLite
file, and the endpoints the benchmark drives (`/api/schedule-job`, `/api/job/<id>`,
`/api/jobs`, the scheduler seed's list `/api/scheduler/jobs`, plus `/api/health` to
know it is up) with the seeds' JSON. Served by werkzeug's `run_simple(threaded=True)`: a thread per connection, HTTP/1.1
keep-alive, request logging off (cronwell runs with its access log off too).

    python -m bench.peers.flask_apscheduler --port 5001 --db /tmp/peer.db --pool-size 10

Benchmark-only: nothing outside `bench/` imports it.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask, Response, jsonify, request
from werkzeug.serving import run_simple

REQUIRED = ("job_id", "job_type", "script_path", "run_date")
JOB_TYPES = ("bash", "python")
#: the seed's python contract: import the file, call main(*args), print what it returns
PYTHON_MAIN = "import runpy, sys; print(runpy.run_path(sys.argv[1])['main'](*sys.argv[2:]))"
RUN_TIMEOUT = 3600.0


def run_script(job_type: str, script_path: str, args: Sequence[str]) -> int:
    """The job function APScheduler stores by reference: run the script as a child."""
    if job_type == "python":
        argv = [sys.executable, "-c", PYTHON_MAIN, script_path, *args]
    else:
        argv = [script_path, *args]
    return subprocess.run(argv, capture_output=True, timeout=RUN_TIMEOUT, check=False).returncode


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def job_view(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "name": job.name,
        "next_run_time": iso(job.next_run_time),
        "trigger": str(job.trigger),
        "executor": job.executor,
        "pending": job.pending,
    }


def scheduler_view(job: Job) -> dict[str, Any]:
    """A job as the scheduler seed lists it, from what APScheduler keeps of it."""
    job_type, script_path, args = job.args
    return {
        "_id": job.id,
        "name": job.name,
        "job_class_string": f"{job_type}:{script_path}",
        "pub_args": list(args),
        "pub_kwargs": dict(job.kwargs),
        "is_enabled": True,
        "is_paused": job.next_run_time is None,
        "next_run_time": iso(job.next_run_time),
        "trigger": str(job.trigger),
        "timezone": str(getattr(job.trigger, "timezone", "UTC")),
        "misfire_grace_time": job.misfire_grace_time,
        "coalesce": job.coalesce,
        "max_instances": job.max_instances,
    }


def error(message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def create_app(scheduler: BackgroundScheduler) -> Flask:
    app = Flask("flask_apscheduler_peer")

    @app.post("/api/schedule-job")
    def schedule_job() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error("Request body must be a JSON object", 400)
        missing = [name for name in REQUIRED if not body.get(name)]
        if missing:
            return error(f"Missing required fields: {', '.join(missing)}", 400)
        if body["job_type"] not in JOB_TYPES:
            return error("job_type must be 'bash' or 'python'", 400)
        try:
            run_date = datetime.fromisoformat(body["run_date"])
        except (TypeError, ValueError):
            return error(f"Invalid run_date: {body['run_date']!r}", 400)
        if run_date.tzinfo is None:
            run_date = run_date.replace(tzinfo=UTC)
        if run_date <= datetime.now(UTC):
            return error("run_date must be in the future", 400)
        args = [str(a) for a in body.get("args") or []]
        try:
            job = scheduler.add_job(
                run_script,
                "date",
                run_date=run_date,
                args=[body["job_type"], body["script_path"], args],
                id=body["job_id"],
                name=f"{body['job_type']}:{body['script_path']}",
                replace_existing=bool(body.get("replace_existing", False)),
            )
        except ConflictingIdError:
            return error(f"Job already exists: {body['job_id']}", 409)
        view = {
            "job_id": job.id,
            "name": job.name,
            "next_run_time": iso(job.next_run_time),
            "job_type": body["job_type"],
            "script_path": body["script_path"],
            "args": args,
        }
        return jsonify({"message": "Job scheduled successfully", "job": view})

    @app.get("/api/jobs")
    def list_jobs() -> Any:
        jobs = [job_view(job) for job in scheduler.get_jobs()]
        return jsonify({"count": len(jobs), "jobs": jobs})

    @app.get("/api/scheduler/jobs")
    def list_scheduler_jobs() -> Any:
        """The scheduler seed's list, in its envelope, from the same store read."""
        jobs = [scheduler_view(job) for job in scheduler.get_jobs()]
        return jsonify(
            {
                "status": "success",
                "message": "Jobs retrieved successfully",
                "total": len(jobs),
                "data": jobs,
            }
        )

    @app.get("/api/job/<job_id>")
    def get_job(job_id: str) -> Any:
        job = scheduler.get_job(job_id)
        if job is None:
            return error(f"Job not found: {job_id}", 404)
        return jsonify({"job": job_view(job)})

    @app.get("/api/health")
    def health() -> Any:
        return jsonify({"status": "healthy", "scheduler_running": scheduler.running})

    return app


def build_scheduler(db_path: str, pool_size: int) -> BackgroundScheduler:
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{db_path}")},
        executors={"default": ThreadPoolExecutor(pool_size)},
        job_defaults={"misfire_grace_time": 60, "coalesce": True, "max_instances": 1},
        timezone=UTC,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.flask_apscheduler")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--db", required=True, help="SQLite file for the SQLAlchemy job store")
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    scheduler = build_scheduler(args.db, args.pool_size)
    scheduler.start()
    try:
        run_simple(args.host, args.port, create_app(scheduler), threaded=True)
    finally:
        scheduler.shutdown(wait=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
