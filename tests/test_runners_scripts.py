"""run_script and run_job for bash and python scripts: real files in a script root."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import runners
from engine.interfaces import Outcome
from engine.model import JobKind, Status
from jobs.registry import load_job
from runners import Runner
from runners.scripts import run_script
from tests.runners_support import make_request, read_pid, wait_gone, write_script

#: the service's runner, with the real class loader
run_job = Runner(load_job)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    return folder


def script(
    kind: JobKind,
    path: Path,
    *args: str,
    timeout: float | None = 5.0,
    cap: int = 64 * 1024,
    cancel: threading.Event | None = None,
    roots: tuple[Path, ...] | None = None,
) -> Outcome:
    return run_script(
        kind,
        str(path),
        list(args),
        roots=(path.parent,) if roots is None else roots,
        timeout=timeout,
        output_cap=cap,
        cancel=cancel or threading.Event(),
        grace=0.3,
    )


def python(root: Path, body: str, *args: str, **options: Any) -> Outcome:
    return script(JobKind.PYTHON, write_script(root, "job.py", body, 0o644), *args, **options)


# --- bash ---------------------------------------------------------------------------


@pytest.mark.parametrize("code, status", [(0, Status.COMPLETED), (3, Status.FAILED)])
def test_bash_exit_codes_decide_the_status(root: Path, code: int, status: Status) -> None:
    path = write_script(root, "exit.sh", f"#!/bin/bash\necho out\necho err >&2\nexit {code}\n")
    outcome = script(JobKind.BASH, path)
    assert (outcome.status, outcome.exit_code) == (status, code)
    assert outcome.output == "out\n[stderr]\nerr\n"
    assert outcome.error == ("" if code == 0 else f"exit code {code}\nerr\n")


def test_bash_args_are_positional_parameters(root: Path) -> None:
    path = write_script(root, "args.sh", '#!/bin/bash\necho "count=$# first=$1 second=$2"\n')
    outcome = script(JobKind.BASH, path, "--full", "with space")
    assert outcome.output == "count=2 first=--full second=with space\n"


def test_bash_runs_in_the_scripts_folder(root: Path) -> None:
    outcome = script(JobKind.BASH, write_script(root, "pwd.sh", "#!/bin/bash\npwd\n"))
    assert outcome.output.strip() == str(root.resolve())


def test_bash_without_the_execute_bit_fails_naming_the_fix(root: Path) -> None:
    path = write_script(root, "plain.sh", "#!/bin/bash\necho hi\n", mode=0o644)
    outcome = script(JobKind.BASH, path)
    assert outcome.status is Status.FAILED
    assert f"chmod +x {path.resolve()}" in outcome.error


def test_a_bash_timeout_kills_the_background_child_too(root: Path) -> None:
    pid_file = root / "child.pid"
    path = write_script(root, "hang.sh", f"#!/bin/bash\nsleep 30 &\necho $! > {pid_file}\nwait\n")
    outcome = script(JobKind.BASH, path, timeout=0.5)
    assert outcome.status is Status.TIMEOUT
    assert wait_gone(read_pid(pid_file))


def test_paths_are_checked_again_at_run_time(root: Path, tmp_path: Path) -> None:
    outside = write_script(tmp_path, "outside.sh", "#!/bin/bash\necho escaped\n")
    (root / "link.sh").symlink_to(outside)
    outcome = script(JobKind.BASH, root / "link.sh")
    assert outcome.status is Status.FAILED
    assert "outside the script roots" in outcome.error and outcome.output == ""


@pytest.mark.parametrize(
    "path, roots, expected",
    [
        ("scripts/x.sh", "root", "must be absolute"),
        ("{root}/../x.sh", "root", "outside the script roots"),
        ("{root}", "root", "not a regular file"),
        ("{root}/missing.sh", "root", "does not exist"),
        ("{root}/x.sh", "none", "no script roots are configured"),
    ],
)
def test_refused_paths_fail_without_running(
    root: Path, path: str, roots: str, expected: str
) -> None:
    write_script(root.parent, "x.sh", "#!/bin/bash\n")
    write_script(root, "x.sh", "#!/bin/bash\n")
    outcome = run_script(
        JobKind.BASH,
        path.format(root=root),
        [],
        roots=(root,) if roots == "root" else (),
        timeout=1,
        output_cap=100,
        cancel=threading.Event(),
    )
    assert outcome.status is Status.FAILED and expected in outcome.error


def test_run_script_refuses_class_jobs(root: Path) -> None:
    outcome = script(JobKind.CLASS, root / "x.sh")
    assert outcome.status is Status.FAILED and "not class" in outcome.error


# --- python -------------------------------------------------------------------------


def test_python_main_gets_the_args_and_its_string_return_value_is_kept(root: Path) -> None:
    outcome = python(
        root,
        "import sys\n\ndef main(*args):\n    print(f'Processing with arguments: {args}')\n"
        "    print('argv', sys.argv[1:])\n    return 'Success'\n",
        "--dataset",
        "sales",
    )
    assert (outcome.status, outcome.exit_code, outcome.error) == (Status.COMPLETED, 0, "")
    assert outcome.return_value == "Success"
    assert outcome.output == (
        "Processing with arguments: ('--dataset', 'sales')\nargv ['--dataset', 'sales']\n"
    )


def test_python_dict_return_value_comes_back_as_json(root: Path) -> None:
    outcome = python(root, "def main():\n    return {'rows': 3, 'ok': True, 'tags': ('a', 'b')}\n")
    assert outcome.return_value == {"rows": 3, "ok": True, "tags": ["a", "b"]}


def test_python_non_json_return_value_becomes_its_repr(root: Path) -> None:
    outcome = python(
        root,
        "class Point:\n    def __repr__(self):\n        return 'Point(1, 2)'\n\n"
        "def main():\n    return Point()\n",
    )
    assert (outcome.status, outcome.return_value) == (Status.COMPLETED, "Point(1, 2)")


def test_python_return_value_is_not_read_from_stdout(root: Path) -> None:
    outcome = python(root, "def main():\n    print('{\"ok\": false}')\n")
    assert (outcome.status, outcome.return_value) == (Status.COMPLETED, None)


def test_python_exception_fails_with_the_traceback(root: Path) -> None:
    outcome = python(
        root,
        "def helper(x):\n    return 1 / x\n\ndef main():\n    print('before')\n    helper(0)\n",
    )
    assert (outcome.status, outcome.exit_code) == (Status.FAILED, 1)
    assert outcome.error.startswith("Traceback (most recent call last):")
    assert 'job.py", line 6, in main' in outcome.error
    assert 'job.py", line 2, in helper' in outcome.error
    assert outcome.error.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "pyhost" not in outcome.error and "importlib" not in outcome.error
    assert outcome.output == "before\n"


def test_python_missing_main_fails_clearly(root: Path) -> None:
    outcome = python(root, "def run():\n    return 1\n")
    assert outcome.status is Status.FAILED
    assert (
        outcome.error
        == f"{(root / 'job.py').resolve()} defines no main() function; the scheduler calls main(*args)"
    )


def test_python_syntax_error_fails_with_the_location(root: Path) -> None:
    outcome = python(root, "def main(:\n    return 1\n")
    assert outcome.status is Status.FAILED
    assert 'job.py", line 1' in outcome.error and "SyntaxError" in outcome.error


@pytest.mark.parametrize("code, status", [(0, Status.COMPLETED), (3, Status.FAILED)])
def test_python_sys_exit_sets_the_exit_code(root: Path, code: int, status: Status) -> None:
    outcome = python(root, f"import sys\n\ndef main():\n    print('bye')\n    sys.exit({code})\n")
    assert (outcome.status, outcome.exit_code, outcome.output) == (status, code, "bye\n")
    assert outcome.error == ("" if code == 0 else f"exit code {code}")


def test_python_scripts_import_their_neighbours_and_not_the_runner_modules(root: Path) -> None:
    write_script(root, "process.py", "NAME = 'the script folder process module'\n", 0o644)
    outcome = python(root, "import process\n\ndef main():\n    return process.NAME\n")
    assert outcome.return_value == "the script folder process module"


#: a python script whose main() never returns on its own: only a kill ends it
HANGS = "import threading\n\ndef main():\n    threading.Event().wait()\n"


def test_a_hanging_python_script_is_killed_by_the_timeout(root: Path) -> None:
    started = time.monotonic()
    outcome = python(
        root,
        "import threading\n\ndef main():\n    print('working', flush=True)\n    threading.Event().wait()\n",
        timeout=0.5,
    )
    assert outcome.status is Status.TIMEOUT
    assert outcome.output == "working\n"
    assert time.monotonic() - started < 1.5


def test_a_python_return_value_over_the_cap_is_dropped_with_a_note(root: Path) -> None:
    outcome = python(root, "def main():\n    return 'x' * 100_000\n", cap=1000)
    assert outcome.status is Status.COMPLETED
    assert outcome.return_value.startswith(
        "<return value dropped: 100025 bytes of JSON, over the 1000-byte"
    )


def test_a_python_script_cancelled_while_running_is_cancelled(root: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    outcome = python(root, HANGS, timeout=None, cancel=cancel)
    assert outcome.status is Status.CANCELLED and outcome.return_value is None


# --- run_job --------------------------------------------------------------------------


def test_run_job_runs_a_bash_job_with_json_encoded_args(root: Path) -> None:
    path = write_script(root, "args.sh", '#!/bin/bash\nprintf "[%s]" "$@"\n')
    request = make_request(JobKind.BASH, str(path), ["a", 7, True, {"k": 1}], roots=(root,))
    outcome = run_job(request)
    assert (outcome.status, outcome.output) == (Status.COMPLETED, '[a][7][true][{"k": 1}]')


def test_run_job_runs_a_python_job_and_uses_the_jobs_timeout(root: Path) -> None:
    path = write_script(root, "slow.py", HANGS, 0o644)
    request = make_request(JobKind.PYTHON, str(path), roots=(root,))
    request.job.timeout = 0.4
    assert run_job(request).status is Status.TIMEOUT


def test_run_job_refuses_a_script_outside_the_roots(root: Path, tmp_path: Path) -> None:
    path = write_script(tmp_path, "other.py", "def main():\n    return 1\n", 0o644)
    outcome = run_job(make_request(JobKind.PYTHON, str(path), roots=(root,)))
    assert outcome.status is Status.FAILED and "outside the script roots" in outcome.error


def test_run_job_turns_an_unexpected_error_into_a_failed_outcome(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object, **__: object) -> Outcome:
        raise RuntimeError("runner bug")

    monkeypatch.setattr(runners, "run_script", broken)
    with caplog.at_level("ERROR", logger="cronwell.runners"):
        outcome = run_job(make_request(JobKind.BASH, "/x.sh", roots=(root,)))
    assert outcome.status is Status.FAILED
    # the record says what failed; the service's traceback is only in the log
    assert "RuntimeError: runner bug" in outcome.error
    assert "Traceback" not in outcome.error and 'File "' not in outcome.error
    (logged,) = [r for r in caplog.records if r.exc_info]
    assert logged.exc_info is not None and logged.exc_info[0] is RuntimeError


def test_a_nul_byte_in_a_stored_argument_fails_without_the_service_traceback(root: Path) -> None:
    # the API refuses NUL bytes; a job stored before that (or through another door)
    # still ends as a one-line failure, not a traceback of subprocess internals
    script = root / "ok.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    outcome = run_job(make_request(JobKind.BASH, str(script), roots=(root,), args=["a\x00b"]))
    assert outcome.status is Status.FAILED
    assert "null byte" in outcome.error
    assert "Traceback" not in outcome.error and 'File "' not in outcome.error
