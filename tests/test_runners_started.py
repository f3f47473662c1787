"""A runner says when a run has begun (`RunRequest.started`): once its process is
spawned, or just before a job class is called, so what gives way to a fire's start
(api/give_way.py) stops waiting while the run itself goes on. Real child processes,
through the service's runner."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.interfaces import RunRequest
from engine.model import Execution, Job, JobKind, Status
from engine.triggers.date import DateTrigger
from jobs.registry import load_job
from runners import Runner
from runners.process import run_process
from tests.jobs_support import START

run_job = Runner(load_job)


def request(kind: JobKind, target: str, root: Path, started: list[str]) -> RunRequest:
    job = Job(id="j1", name="t", kind=kind, target=target, trigger=DateTrigger(START))
    execution = Execution(id="x1", job_id="j1", status=Status.RUNNING, created_at=START)
    marker = root / "ran"
    # what the hook sees: whether the script had written its marker yet
    return RunRequest(
        job=job,
        execution=execution,
        script_roots=(root,),
        started=lambda: started.append("ran" if marker.exists() else "not yet"),
    )


@pytest.mark.parametrize(
    ("kind", "name", "body"),
    [
        (JobKind.BASH, "slow.sh", "#!/bin/bash\nsleep 0.3\ntouch ran\n"),
        (
            JobKind.PYTHON,
            "slow.py",
            "import pathlib, time\ndef main():\n    time.sleep(0.3)\n    pathlib.Path('ran').touch()\n",
        ),
    ],
)
def test_a_script_run_is_started_once_when_spawned_before_it_ends(
    tmp_path: Path, kind: JobKind, name: str, body: str
) -> None:
    script = tmp_path / name
    script.write_text(body)
    script.chmod(0o755)
    started: list[str] = []
    outcome = run_job(request(kind, str(script), tmp_path, started))
    assert outcome.status is Status.COMPLETED, outcome.error
    assert started == ["not yet"]  # called once, while the script was still sleeping
    assert (tmp_path / "ran").exists()


def test_a_refused_script_path_never_says_it_started(tmp_path: Path) -> None:
    started: list[str] = []
    outcome = run_job(request(JobKind.BASH, str(tmp_path / "missing.sh"), tmp_path, started))
    assert outcome.status is Status.FAILED
    assert started == []


def test_a_job_class_is_started_before_it_is_called(tmp_path: Path) -> None:
    order: list[str] = []
    runner = Runner(lambda request: lambda *args, **kwargs: order.append("called"))
    req = request(JobKind.CLASS, "any.Job", tmp_path, order)
    outcome = runner(req)
    assert outcome.status is Status.COMPLETED, outcome.error
    assert order == ["not yet", "called"]


def test_run_process_reports_the_spawn_while_the_child_still_runs(tmp_path: Path) -> None:
    finish = tmp_path / "finish"
    script = tmp_path / "wait.sh"
    script.write_text(f"#!/bin/bash\nwhile [ ! -e {finish} ]; do sleep 0.01; done\n")
    script.chmod(0o755)
    calls: list[int] = []

    def on_start() -> None:  # the child cannot end before this lets it
        calls.append(1)
        finish.touch()

    result = run_process(
        [str(script)], timeout=5, output_cap=1024, cancel=threading.Event(), on_start=on_start
    )
    assert result.status is Status.COMPLETED, result.error
    assert calls == [1]


def test_a_program_that_cannot_start_is_not_reported_started(tmp_path: Path) -> None:
    calls: list[int] = []
    result = run_process(
        [str(tmp_path / "no-such-program")],
        timeout=5,
        output_cap=1024,
        cancel=threading.Event(),
        on_start=lambda: calls.append(1),
    )
    assert result.status is Status.FAILED
    assert calls == []
