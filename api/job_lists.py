"""The two job lists (`GET /api/jobs`, `GET /api/scheduler/jobs` and a user's jobs) as
JSON text, built from each job's remembered text.

A list of 1,000 jobs rendered from scratch is 1,000 views and their JSON (~15 ms on the
scripts surface, ~35 ms on the scheduler one, on this project's 2-vCPU machine). Each
job's text is a pure function of the job, so the store remembers it by the job's
stored row (`Store.render_jobs`): an unchanged job costs a lookup, and the list is the
envelope with the texts joined into it. The bytes are exactly those of encoding the
whole answer at once (`errors.dumps`: the same encoder, and a list nested in an object
encodes as `[a, b]` with the same separators), which tests/test_job_lists.py checks.
Whole answers are remembered on top of this by the job table's revision
(api/list_answers.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api import views
from api.errors import dumps
from engine.model import Job
from stores.base import Store

SCHEDULER_MESSAGE = "Jobs retrieved successfully"


def script_job_text(job: Job) -> str:
    """One `GET /api/jobs` entry as JSON (module level: the store's memo is keyed by it)."""
    return dumps(views.script_job(job))


def scheduler_job_text(job: Job) -> str:
    """One `GET /api/scheduler/jobs` entry as JSON."""
    return dumps(views.scheduler_job(job))


def _with_list(envelope: dict[str, Any], texts: list[str]) -> str:
    """`dumps(envelope)` whose last value, an empty list, holds `texts` instead."""
    head = dumps(envelope)
    if not head.endswith("[]}"):  # the list must be the envelope's last value
        raise ValueError("the list must be the envelope's last value")
    return f"{head[:-3]}[{', '.join(texts)}]}}"


def script_envelope(texts: list[str]) -> str:
    """The `GET /api/jobs` answer: `{"count": n, "jobs": [...]}`."""
    return _with_list({"count": len(texts), "jobs": []}, texts)


def scheduler_envelope(texts: list[str]) -> str:
    """The scheduler surface's job list in its envelope (`views.success`)."""
    return _with_list(views.success(SCHEDULER_MESSAGE, total=len(texts), data=[]), texts)


@dataclass(frozen=True, slots=True)
class JobList:
    """One list's name (its key among remembered answers), entry and envelope."""

    name: str
    render: Callable[[Job], str]
    envelope: Callable[[list[str]], str]

    def text(self, store: Store, owner: str | None) -> str:
        """The answer read afresh (no whole answer remembered)."""
        return self.envelope(store.render_jobs(owner, self.render))


SCRIPT_JOBS = JobList("scripts", script_job_text, script_envelope)
SCHEDULER_JOBS = JobList("scheduler", scheduler_job_text, scheduler_envelope)


def script_jobs(store: Store, owner: str | None) -> str:
    """`GET /api/jobs` read afresh (what a remembered answer must equal)."""
    return SCRIPT_JOBS.text(store, owner)


def scheduler_jobs(store: Store, owner: str | None) -> str:
    """`GET /api/scheduler/jobs` read afresh."""
    return SCHEDULER_JOBS.text(store, owner)
