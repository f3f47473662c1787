"""What each page shows, read from the store the way the JSON API reads it and
serialised by the API's own views, so a page shows what the API answers its caller.

Every read takes the viewer's `scope` (api.permissions.owner_filter: None for an admin,
the user's own id otherwise), the same filter the API's lists apply, so a user's page
lists their own jobs, executions, users and servers and nothing else. Single records
are fetched by the handlers through api.permissions' `visible_*` checks before these
run.

These functions do blocking store reads: handlers run them through
`api.context.off_loop`, as the API's list endpoints do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from api import views
from api.scheduler_misc import compute_stats
from api.schedules import upcoming
from engine.model import ACTIVE_STATUSES, Execution, Job, JobKind
from stores.base import Store

JOB_STATES = ("active", "paused", "disabled", "finished")
JOB_KINDS = tuple(k.value for k in JobKind)
#: executions read at most for one chart (newest first); the chart says when it hit this
CHART_CAP = 20_000
CHART_PAGE = 1000
EXECUTIONS_PER_PAGE = 25
#: jobs listed on one page of the jobs list (bench/ui.py measures a full one)
JOBS_PER_PAGE = 1000
NEXT_FIRES = 10
#: the filter value for jobs with no owner (the scripts surface's)
NO_OWNER = "none"


def job_state(job: Job) -> str:
    if not job.enabled:
        return "disabled"
    if job.paused:
        return "paused"
    return "active" if job.next_run_time is not None else "finished"


@dataclass(slots=True)
class JobRow:
    job: dict[str, Any]  # views.scheduler_job
    state: str
    last: dict[str, Any] | None  # views.execution of its newest execution

    @property
    def words(self) -> str:
        """The schedule in words, as the API's `schedule.description` has it."""
        words: str = self.job["schedule"]["description"]
        return words


@dataclass(slots=True)
class JobFilters:
    owner: str | None = None
    state: str | None = None
    kind: str | None = None
    q: str = ""

    def matches(self, job: Job) -> bool:
        if self.owner == NO_OWNER and job.owner is not None:
            return False
        if self.state and job_state(job) != self.state:
            return False
        if self.kind and job.kind != self.kind:
            return False
        if self.q:
            needle = self.q.casefold()
            return needle in job.name.casefold() or needle in job.id.casefold()
        return True


@dataclass(slots=True)
class JobList:
    rows: list[JobRow]
    total: int  # jobs before filtering (of the owner when one is chosen)
    stats: dict[str, Any]
    users: list[dict[str, Any]]
    matched: int  # jobs the filters keep, over every page
    page: int  # 0-based
    per_page: int = JOBS_PER_PAGE

    @property
    def first(self) -> int:
        """1-based number of the first row shown (0 when none is)."""
        return self.page * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.page * self.per_page + len(self.rows) if self.rows else 0

    @property
    def pages(self) -> int:
        return max(1, -(-self.matched // self.per_page))

    @property
    def names(self) -> dict[str, str]:
        return {u["_id"]: u["name"] for u in self.users}


def visible_users(store: Store, scope: str | None) -> list[dict[str, Any]]:
    """The users the viewer may see, as `GET /api/users/` answers them: everyone for
    an admin, themself for a user."""
    if scope is None:
        return [views.user(u) for u in store.list_users()]
    return [views.user(store.get_user(scope))]


def job_list(
    store: Store,
    filters: JobFilters,
    page: int = 0,
    latest: LatestRuns | None = None,
    scope: str | None = None,
) -> JobList:
    """One page of the jobs the filters keep, oldest first (the API's order), of the
    jobs the viewer may see. The handler has checked that a chosen user is visible."""
    owner = filters.owner if filters.owner not in (None, NO_OWNER) else scope
    jobs = store.list_jobs(owner=owner)
    matched = [j for j in jobs if filters.matches(j)]
    chosen = matched[page * JOBS_PER_PAGE : (page + 1) * JOBS_PER_PAGE]
    last = (latest or LatestRuns()).read(store, chosen)
    rows = [JobRow(views.scheduler_job(j), job_state(j), last.get(j.id)) for j in chosen]
    users = visible_users(store, scope)
    return JobList(
        rows, len(jobs), compute_stats(store, owner), users, len(matched), page, JOBS_PER_PAGE
    )


class LatestRuns:
    """Each job's newest execution, as the API shows it, for the jobs list.

    Reading it from the store is one indexed query and one decoded record per job
    (~0.15 ms: 150 ms for 1,000 jobs), so finished ones are remembered, keyed by the
    job's run counters and next fire (`total_executions`, `last_run_time`,
    `next_run_time`). A job's newest execution can only change to another finished
    one when one of those moves: finishing bumps the counters, a missed or skipped
    fire moves the next fire. Executions still active (scheduled, queued, running)
    are read afresh on every list with one query per active status, and win. What
    this cannot see: executions deleted since (a cleanup job) stay shown until the job
    runs again. Bounded; cleared when full.
    """

    LIMIT = 100_000

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(job: Job) -> tuple[Any, ...]:
        return (job.total_executions, job.last_run_time, job.next_run_time)

    def read(self, store: Store, jobs: list[Job]) -> dict[str, dict[str, Any]]:
        wanted = {j.id for j in jobs}
        found: dict[str, dict[str, Any]] = {}
        if not wanted:
            return found
        for status in ACTIVE_STATUSES:
            for e in store.list_executions(status=status, limit=ACTIVE_LIMIT):
                if e.job_id in wanted and e.job_id not in found:
                    found[e.job_id] = views.execution(e)
        with self._lock:
            known = dict(self._known)
        learnt: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        for job in jobs:
            if job.id in found or not (job.total_executions or job.last_run_time):
                continue
            key = self._key(job)
            remembered = known.get(job.id)
            if remembered is not None and remembered[0] == key:
                found[job.id] = remembered[1]
                continue
            newest = store.list_executions(job_id=job.id, limit=1)
            if newest:
                shown = found[job.id] = views.execution(newest[0])
                if newest[0].terminal:
                    learnt[job.id] = (key, shown)
        if learnt:
            with self._lock:
                if len(self._known) + len(learnt) > self.LIMIT:
                    self._known.clear()
                self._known.update(learnt)
        return found


#: active executions read per status for the jobs list (the newest first)
ACTIVE_LIMIT = 1000


@dataclass(slots=True)
class Recent:
    """Executions created since a moment, newest first, and whether the cap cut it."""

    executions: list[Execution]
    since: datetime
    capped: bool


def recent_executions(
    store: Store, since: datetime, *, job_id: str | None = None, owner: str | None = None
) -> Recent:
    out: list[Execution] = []
    offset = 0
    while len(out) < CHART_CAP:
        page = store.list_executions(job_id=job_id, owner=owner, limit=CHART_PAGE, offset=offset)
        fresh = [e for e in page if e.created_at >= since]
        out.extend(fresh)
        if len(page) < CHART_PAGE or len(fresh) < len(page):
            return Recent(out, since, capped=False)
        offset += CHART_PAGE
    return Recent(out[:CHART_CAP], since, capped=True)


@dataclass(slots=True)
class JobPage:
    job: dict[str, Any]
    script_view: dict[str, Any]
    model: Job
    state: str
    words: str
    #: `GET /api/scheduler/jobs/<id>/next-runs?count=10`, as the API answers it
    fires: dict[str, Any]
    executions: list[dict[str, Any]]
    execution_total: int
    offset: int
    recent: Recent
    owner: dict[str, Any] | None = None
    lateness: dict[str, float | None] = field(default_factory=dict)


def job_page(store: Store, job: Job, now: datetime, offset: int) -> JobPage:
    """The job (already checked visible), its next fires, a page of its executions."""
    page = store.list_executions(job_id=job.id, limit=EXECUTIONS_PER_PAGE, offset=offset)
    owner = None
    if job.owner is not None:
        try:
            owner = views.user(store.get_user(job.owner))
        except LookupError:
            owner = None
    shown = views.scheduler_job(job)
    return JobPage(
        job=shown,
        script_view=views.script_job(job),
        model=job,
        state=job_state(job),
        words=shown["schedule"]["description"],
        fires=upcoming(job, NEXT_FIRES),
        executions=[views.execution(e) for e in page],
        execution_total=store.count_executions(job_id=job.id),
        offset=offset,
        recent=recent_executions(store, now - timedelta(days=7), job_id=job.id),
        owner=owner,
        lateness={e.id: lateness_seconds(e) for e in page},
    )


def lateness_seconds(e: Execution) -> float | None:
    """How long after its fire time a scheduled run started; None for manual runs and
    runs that never started."""
    if e.scheduled_for is None or e.started_at is None:
        return None
    return (e.started_at - e.scheduled_for).total_seconds()


STDERR_MARK = "[stderr]\n"


def split_output(text: str) -> tuple[str, str | None]:
    """stdout and stderr of an output the process runner combined (stdout, then stderr
    under a `[stderr]` line: runners.process.combine_output); (text, None) otherwise."""
    if text.startswith(STDERR_MARK):
        return "", text[len(STDERR_MARK) :]
    head, mark, tail = text.rpartition("\n" + STDERR_MARK)
    if not mark:
        return text, None
    return head + "\n", tail


@dataclass(slots=True)
class ExecutionPage:
    execution: dict[str, Any]
    stdout: str
    stderr: str | None
    lateness: float | None
    active: bool
    retries: list[dict[str, Any]]
    job_exists: bool


def execution_page(store: Store, e: Execution) -> ExecutionPage:
    stdout, stderr = split_output(e.output)
    siblings = store.list_executions(job_id=e.job_id, limit=100)
    retries = [views.execution(s) for s in siblings if s.retry_of == e.id]
    try:
        store.get_job(e.job_id)
        job_exists = True
    except LookupError:
        job_exists = False
    return ExecutionPage(
        execution=views.execution(e),
        stdout=stdout,
        stderr=stderr,
        lateness=lateness_seconds(e),
        active=e.status in ACTIVE_STATUSES,
        retries=retries,
        job_exists=job_exists,
    )
