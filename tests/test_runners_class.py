"""Job classes run in the calling thread: per-execution output capture (also with many
at once), return values, JobError vs crashes, timeout and cancel via the flag."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from engine.interfaces import Outcome
from engine.model import JobKind, Status
from jobs.registry import load_job
from runners import Runner
from tests.runners_support import make_request

#: the service's runner, with the real class loader
run_job = Runner(load_job)

JOB_MODULE = '''
import logging
import sys
import time

from jobs.base import BaseJob, JobError


class PrintJob(BaseJob):
    def run(self, tag, lines=40):
        for number in range(lines):
            print(f"{tag} out {number}")
            sys.stderr.write(f"{tag} err {number}\\n")
            time.sleep(0.001)  # let the other threads interleave
        return {"tag": tag, "job_id": self.context.job_id}


class ReprJob(BaseJob):
    def run(self):
        class Opaque:
            def __repr__(self):
                return "<Opaque 42>"
        return Opaque()


class TupleJob(BaseJob):
    def run(self, *args, **kwargs):
        return (args, kwargs)


class ContextJob(BaseJob):
    def run(self):
        return [self.context.services, self.context.execution_id]


class RefusingJob(BaseJob):
    def run(self):
        print("checking")
        raise JobError("server db-1 is unreachable")


class CrashingJob(BaseJob):
    def run(self):
        return {}["missing"]


class ExitingJob(BaseJob):
    def run(self):
        sys.exit(2)


class PoliteSlowJob(BaseJob):
    """Waits for the cancel flag (at most 5 s), as long-running jobs should."""
    def run(self):
        print("waiting")
        stopped = self.context.cancel.wait(5)
        return "stopped" if stopped else "ran out"


class LoggingJob(BaseJob):
    def run(self):
        logger = logging.getLogger(f"cronwell.test.{self.context.execution_id}")
        handler = logging.StreamHandler(sys.stdout)
        logger.addHandler(handler)
        try:
            logger.warning("logged line")
        finally:
            logger.removeHandler(handler)


class BigResultJob(BaseJob):
    def run(self):
        return ["z" * 10_000]


class ChattyJob(BaseJob):
    def run(self):
        sys.stdout.write("y" * 1_000_000)
'''


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A user job module in a temp folder on sys.path (as CRONWELL_JOB_PATH does)."""
    folder = tmp_path_factory.mktemp("user_jobs")
    name = f"cronwell_test_jobs_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(JOB_MODULE)
    sys.path.insert(0, str(folder))
    yield name
    sys.path.remove(str(folder))
    sys.modules.pop(name, None)


def run_class(module: str, name: str, *args: Any, **options: Any) -> Outcome:
    return run_job(make_request(JobKind.CLASS, f"{module}.{name}", list(args), **options))


def test_eight_concurrent_jobs_each_capture_only_their_own_lines(module: str) -> None:
    tags = [f"job{number}" for number in range(8)]
    outcomes: dict[str, Outcome] = {}
    start = threading.Barrier(len(tags))

    def worker(tag: str) -> None:
        start.wait()
        outcomes[tag] = run_class(module, "PrintJob", tag)

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in tags]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for tag in tags:
        outcome = outcomes[tag]
        assert outcome.status is Status.COMPLETED
        expected = "".join(f"{tag} out {n}\n{tag} err {n}\n" for n in range(40))
        assert outcome.output == expected
        assert outcome.return_value["tag"] == tag


def test_output_outside_a_job_still_reaches_the_real_stream(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_class(module, "PrintJob", "inside", 1)
    print("outside the job")
    captured = capsys.readouterr()
    assert "outside the job" in captured.out
    assert "inside" not in captured.out + captured.err
    assert outcome.output == "inside out 0\ninside err 0\n"


def test_return_values_are_json_or_repr(module: str) -> None:
    assert run_class(module, "ReprJob").return_value == "<Opaque 42>"
    outcome = run_class(module, "TupleJob", 1, "a", kwargs={"k": [1, 2]})
    assert outcome.return_value == [[1, "a"], {"k": [1, 2]}]


def test_the_job_gets_the_services_and_its_ids(module: str) -> None:
    request = make_request(JobKind.CLASS, f"{module}.ContextJob", services="the services")
    assert run_job(request).return_value == ["the services", request.execution.id]


def test_job_error_fails_with_its_message_only(module: str) -> None:
    outcome = run_class(module, "RefusingJob")
    assert (outcome.status, outcome.error) == (Status.FAILED, "server db-1 is unreachable")
    assert outcome.output == "checking\n"


def test_other_exceptions_fail_with_the_traceback(module: str) -> None:
    outcome = run_class(module, "CrashingJob")
    assert outcome.status is Status.FAILED
    assert outcome.error.startswith("Traceback (most recent call last):")
    assert f'{module}.py", line ' in outcome.error and "in run" in outcome.error
    assert outcome.error.rstrip().endswith("KeyError: 'missing'")
    assert "runners/" not in outcome.error  # starts at the job's own frame


def test_sys_exit_in_a_job_fails_it_without_ending_the_thread(module: str) -> None:
    outcome = run_class(module, "ExitingJob")
    assert (outcome.status, outcome.error) == (Status.FAILED, "the job called sys.exit(2)")


def test_an_unknown_class_fails_with_the_registry_message(module: str) -> None:
    outcome = run_class(module, "NoSuchJob")
    assert outcome.status is Status.FAILED and "Unknown job class" in outcome.error


def test_timeout_sets_the_cancel_flag_and_records_timeout(module: str) -> None:
    started = time.monotonic()
    outcome = run_class(module, "PoliteSlowJob", timeout=0.3)
    assert outcome.status is Status.TIMEOUT
    assert outcome.error.startswith("timed out after 0.3 s: the cancel flag was set")
    assert (outcome.return_value, outcome.output) == ("stopped", "waiting\n")
    assert time.monotonic() - started < 2


def test_a_cancel_while_running_ends_as_cancelled(module: str) -> None:
    request = make_request(JobKind.CLASS, f"{module}.PoliteSlowJob", timeout=5)
    timer = threading.Timer(0.2, request.cancel.set)
    timer.start()
    outcome = run_job(request)
    assert (outcome.status, outcome.return_value) == (Status.CANCELLED, "stopped")
    assert outcome.error.startswith("cancelled; the job returned after")


def test_a_cancel_before_the_start_runs_nothing(module: str) -> None:
    request = make_request(JobKind.CLASS, f"{module}.PrintJob", ["never"])
    request.cancel.set()
    outcome = run_job(request)
    assert (outcome.status, outcome.output) == (Status.CANCELLED, "")


def test_logging_to_stdout_inside_the_job_is_captured(module: str) -> None:
    assert run_class(module, "LoggingJob").output == "logged line\n"


def test_job_output_is_capped_with_a_marker(module: str) -> None:
    outcome = run_class(module, "ChattyJob", output_cap=100)
    assert outcome.output == (
        "y" * 100 + "\n[cronwell: 999900 more bytes of output dropped; the cap is 100 bytes]\n"
    )


def test_a_return_value_over_the_cap_is_dropped_with_a_note(module: str) -> None:
    outcome = run_class(module, "BigResultJob", output_cap=100)
    assert outcome.status is Status.COMPLETED
    assert outcome.return_value == (
        "<return value dropped: 10004 bytes of JSON, over the 100-byte output cap>"
    )
    assert run_class(module, "BigResultJob").return_value == ["z" * 10_000]


def test_a_class_job_without_a_timeout_finishes_without_a_timer(module: str) -> None:
    before = threading.active_count()
    assert run_class(module, "TupleJob").status is Status.COMPLETED
    assert threading.active_count() == before


def test_a_timeout_beyond_what_a_timer_can_wait_still_arms_one(module: str) -> None:
    # 1e10 s is more than threading.TIMEOUT_MAX: an unclamped Timer thread dies with
    # OverflowError at once and no timeout is enforced; clamped, the timer is alive
    # while the job runs (a cancel from outside then ends it)
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[assignment]
    try:
        request = make_request(JobKind.CLASS, f"{module}.PoliteSlowJob", timeout=1e10)
        timer = threading.Timer(0.3, request.cancel.set)
        timer.start()
        outcome = run_job(request)
    finally:
        threading.excepthook = previous
    assert errors == []
    assert outcome.status is Status.CANCELLED
