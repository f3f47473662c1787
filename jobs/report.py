"""ReportGenerationJob: how the jobs did over the last day, week or month.

The period ends now and starts 1 day, 7 days or 1 calendar month earlier; it covers the
executions created in it. Per job (and in total) the report gives counts by status, the
failures (failed, timeout, abandoned; the latest ten with their errors), mean and max
duration of the executions that ran, and the success rate: completed out of the runs
that ended on their own (completed + failures; cancelled, missed and skipped fires are
left out since they say nothing about the job's health).

Executions are read page by page, newest first, stopping at the period's start, so a
long history is never loaded at once. The report is written to `Settings.reports`
(CRONWELL_REPORT_DIR, default `<data dir>/reports`) as `report-<type>-<stamp>.json` and
a Markdown twin `.md`, and summarised in the output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, TextIO

from dateutil.relativedelta import relativedelta

from engine.model import Execution, Status
from jobs.base import Argument, BaseJob, JobError
from jobs.files import publish, stamp
from jobs.params import check_signature, choice
from stores.base import Store

PERIODS: dict[str, timedelta | relativedelta] = {
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": relativedelta(months=1),
}
FAILURES = frozenset({Status.FAILED, Status.TIMEOUT, Status.ABANDONED})
PAGE = 500
RECENT_FAILURES = 10


@dataclass(slots=True)
class Tally:
    """Running figures for one job (or all of them)."""

    job_name: str = ""
    by_status: dict[str, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)
    recent_failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, execution: Execution) -> None:
        self.job_name = self.job_name or execution.job_name
        status = str(execution.status)
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if execution.duration_seconds is not None:
            self.durations.append(execution.duration_seconds)
        if execution.status in FAILURES and len(self.recent_failures) < RECENT_FAILURES:
            self.recent_failures.append(
                {
                    "execution_id": execution.id,
                    "job_id": execution.job_id,
                    "status": status,
                    "created_at": execution.created_at.isoformat(),
                    "error": (execution.error.strip().splitlines() or [""])[-1][:300],
                }
            )

    def summary(self) -> dict[str, Any]:
        completed = self.by_status.get(str(Status.COMPLETED), 0)
        failures = sum(self.by_status.get(str(s), 0) for s in FAILURES)
        ended = completed + failures
        return {
            "job_name": self.job_name,
            "total": sum(self.by_status.values()),
            "by_status": dict(sorted(self.by_status.items())),
            "failures": failures,
            "success_rate": round(100 * completed / ended, 2) if ended else None,
            "mean_duration_seconds": (
                round(sum(self.durations) / len(self.durations), 3) if self.durations else None
            ),
            "max_duration_seconds": round(max(self.durations), 3) if self.durations else None,
            "recent_failures": self.recent_failures,
        }


def executions_between(store: Store, start: datetime, end: datetime) -> Iterator[Execution]:
    """Executions created in [start, end], newest first, paged; each once even when new
    ones arrive meanwhile and shift the pages."""
    seen: set[str] = set()
    offset = 0
    while True:
        page = store.list_executions(limit=PAGE, offset=offset)
        for execution in page:
            if execution.created_at < start:
                return
            if execution.created_at <= end and execution.id not in seen:
                seen.add(execution.id)
                yield execution
        if len(page) < PAGE:
            return
        offset += PAGE


def to_markdown(report: dict[str, Any]) -> str:
    totals = report["totals"]
    lines = [
        f"# cronwell {report['report_type']} report",
        "",
        f"Period: {report['period']['start']} to {report['period']['end']}",
        "",
        (
            f"Executions: {totals['total']}, failures: {totals['failures']}, "
            f"success rate: {_pct(totals['success_rate'])}"
        ),
        "",
        "| job | name | total | completed | failures | success rate | mean s | max s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for job_id, row in report["jobs"].items():
        lines.append(
            f"| {job_id} | {_cell(row['job_name'])} | {row['total']} | "
            f"{row['by_status'].get('completed', 0)} | {row['failures']} | "
            f"{_pct(row['success_rate'])} | {_num(row['mean_duration_seconds'])} | "
            f"{_num(row['max_duration_seconds'])} |"
        )
    failures = [f for row in report["jobs"].values() for f in row["recent_failures"]]
    if failures:
        lines += ["", "## Recent failures", ""]
        lines += [
            f"- {f['created_at']} {f['job_id']} ({f['status']}): {_cell(f['error'])}"
            for f in failures
        ]
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class ReportGenerationJob(BaseJob):
    description: ClassVar[str] = "Job to generate reports"
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument("report_type", "string", "daily, weekly or monthly", default="daily"),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_signature(type(self).__name__, self.arguments, args, kwargs)
        report_type = choice(kwargs.get("report_type", "daily"), "report_type", PERIODS)
        end = self.context.now()
        start = end - PERIODS[report_type]
        totals = Tally(job_name="all jobs")
        per_job: dict[str, Tally] = {}
        for execution in executions_between(self.context.store, start, end):
            if self.context.cancelled:
                raise JobError("Report cancelled before it was complete")
            totals.add(execution)
            per_job.setdefault(execution.job_id, Tally()).add(execution)
        report: dict[str, Any] = {
            "report_type": report_type,
            "generated_at": end.isoformat(),
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "totals": totals.summary(),
            "jobs": {job_id: tally.summary() for job_id, tally in sorted(per_job.items())},
        }
        files = self._write(report, f"report-{report_type}-{stamp(end)}")
        t = report["totals"]
        print(f"{report_type.capitalize()} report {start.isoformat()} .. {end.isoformat()}")
        print(
            f"  {t['total']} executions of {len(per_job)} jobs, {t['failures']} failures, "
            f"success rate {_pct(t['success_rate'])}"
        )
        print(f"  written to {files['json']} and {files['markdown']}")
        return {"report_type": report_type, "period": report["period"], "totals": t, "files": files}

    def _write(self, report: dict[str, Any], stem: str) -> dict[str, str]:
        folder = self.context.settings.reports

        def write_json(handle: TextIO) -> None:
            json.dump(report, handle, indent=2)

        def write_markdown(handle: TextIO) -> None:
            handle.write(to_markdown(report))

        try:
            json_path = publish(folder, stem, ".json", write_json)
            markdown_path = publish(folder, json_path.stem, ".md", write_markdown)
        except OSError as exc:
            raise JobError(f"Cannot write the report into {folder}: {exc}") from None
        return {"json": str(json_path), "markdown": str(markdown_path)}
