"""EchoJob and SystemMetricsJob: the jobs that need no peer, and argument checking."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from api.config import Settings
from jobs.base import JobError
from jobs.echo import EchoJob
from jobs.metrics import SystemMetricsJob, existing_ancestor, human_bytes
from stores.memory import MemoryStore
from tests.jobs_support import START, make_context, run_job


def test_echo_prints_the_seeds_shape_and_returns_its_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_job(EchoJob, make_context(MemoryStore()), "arg1", "arg2", key="value")
    assert capsys.readouterr().out == (
        f"Echo Job executed at {START.isoformat()}\n"
        "Args: ['arg1', 'arg2']\n"
        "Kwargs: {'key': 'value'}\n"
    )
    assert result == {
        "executed_at": "2026-03-01T12:00:00+00:00",
        "args": ["arg1", "arg2"],
        "kwargs": {"key": "value"},
    }


def test_metrics_reports_real_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(
        data_dir=tmp_path / "not-yet" / "data", extra={"metrics_cpu_interval": 0.05}
    )
    figures = run_job(SystemMetricsJob, make_context(MemoryStore(), settings))
    assert 0.0 <= figures["cpu"]["percent"] <= 100.0
    assert figures["cpu"]["logical_count"] == psutil.cpu_count()
    assert set(figures["cpu"]["load_average"]) == {"1m", "5m", "15m"}
    assert figures["memory"]["total"] == psutil.virtual_memory().total
    assert 0 < figures["memory"]["available"] <= figures["memory"]["total"]
    assert figures["disk"]["path"] == str(tmp_path.resolve())  # nearest existing folder
    assert figures["disk"]["total"] >= figures["disk"]["free"] > 0
    assert figures["processes"]["count"] >= 1
    assert figures["processes"]["service_rss"] == pytest.approx(
        psutil.Process().memory_info().rss, rel=0.5
    )
    assert figures["uptime_seconds"] > 0
    out = capsys.readouterr().out
    assert out.startswith("System metrics at 2026-03-01T12:00:00+00:00\n")
    assert "Load average:" in out and f"Disk {tmp_path.resolve()}:" in out


def test_metrics_helpers() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**4) == "3.0 TiB"
    assert existing_ancestor(Path("/")) == Path("/")


def test_jobs_refuse_arguments_they_do_not_take() -> None:
    context = make_context(MemoryStore())
    with pytest.raises(
        JobError, match="SystemMetricsJob got unknown pub_kwargs verbose; it takes: none"
    ):
        run_job(SystemMetricsJob, context, verbose=True)
    with pytest.raises(JobError, match=r"SystemMetricsJob takes pub_args \[none\], got 1 values"):
        run_job(SystemMetricsJob, context, "x")
    with pytest.raises(JobError, match="setting metrics_cpu_interval must be a positive number"):
        run_job(
            SystemMetricsJob,
            make_context(MemoryStore(), Settings(extra={"metrics_cpu_interval": 0})),
        )
