"""CustomScriptJob: real scripts from the scripts folder, through the script runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.config import Settings
from jobs.base import JobError
from jobs.custom import CustomScriptJob, as_options
from stores.memory import MemoryStore
from tests.jobs_support import make_context, run_job

BASH = """#!/bin/bash
echo "argc=$#"
for arg in "$@"; do echo "[$arg]"; done
"""
PYTHON = """
import sys

def main(*args):
    print("python saw", len(args), "args")
    return {"args": list(args), "argv": sys.argv[1:]}
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    for name, text, mode in [
        ("rotate.sh", BASH, 0o755),
        ("summarise.py", PYTHON, 0o644),
        ("fail.sh", "#!/bin/bash\necho partial\necho 'disk full' >&2\nexit 3\n", 0o755),
        ("slow.sh", "#!/bin/bash\nexec sleep 30\n", 0o755),
    ]:
        (folder / name).write_text(text)
        (folder / name).chmod(mode)
    (tmp_path / "outside.sh").write_text(BASH)
    (tmp_path / "outside.sh").chmod(0o755)
    (folder / "escape.sh").symlink_to(tmp_path / "outside.sh")
    return folder


def run_in(
    folder: Path | None, *args: Any, extra: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    roots = (folder,) if folder else ()
    settings = Settings(script_roots=roots, extra=extra or {})
    return run_job(CustomScriptJob, make_context(MemoryStore(), settings), *args, **kwargs)


def test_bash_script_gets_args_then_options(
    scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_in(
        scripts,
        "rotate",
        "first arg",
        days=7,
        dry_run=True,
        quiet=False,
        tag=["a", "b"],
        filter={"x": 1},
    )
    assert result["script"] == str(scripts / "rotate.sh") and result["kind"] == "bash"
    assert result["exit_code"] == 0
    out = capsys.readouterr().out
    expected = [
        "first arg",
        "--days",
        "7",
        "--dry_run",
        "--tag",
        "a",
        "--tag",
        "b",
        "--filter",
        '{"x": 1}',
    ]
    assert result["args"] == expected
    assert f"argc={len(expected)}\n" + "".join(f"[{a}]\n" for a in expected) in out
    assert out.startswith("$ rotate.sh 'first arg' --days 7 --dry_run")


def test_python_script_runs_main_and_returns_its_value(scripts: Path) -> None:
    result = run_in(scripts, "summarise.py", limit=3)
    assert result["kind"] == "python"
    assert result["return_value"] == {"args": ["--limit", "3"], "argv": ["--limit", "3"]}


def test_failing_script_fails_the_job_with_its_error(
    scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(JobError, match=r"(?s)3.*disk full"):
        run_in(scripts, "fail")
    assert "partial" in capsys.readouterr().out


def test_timeout_from_settings_stops_the_script(scripts: Path) -> None:
    with pytest.raises(JobError, match=r"timed out after 0\.3 s"):
        run_in(scripts, "slow", extra={"custom_script_timeout": 0.3})


@pytest.mark.parametrize(
    ("folder_given", "args", "kwargs", "message"),
    [
        (
            False,
            ("rotate",),
            {},
            "CustomScriptJob needs a scripts folder: set CRONWELL_SCRIPT_ROOTS",
        ),
        (True, (), {}, r"needs pub_args\[0\]: script_name \(missing\)"),
        (
            True,
            ("nothing",),
            {},
            "No script named 'nothing' in .* \\(tried nothing, nothing.py, nothing.sh\\)",
        ),
        (True, ("../outside.sh",), {}, "script_name must be a name inside the scripts folder"),
        (True, ("/bin/ls",), {}, "script_name must be a name inside the scripts folder"),
        (True, ("escape",), {}, "is outside the script roots"),  # symlink out: the runner refuses
        (True, ("rotate",), {"--x": 1}, "parameter name '--x' cannot be an option"),
    ],
)
def test_refusals(
    scripts: Path, folder_given: bool, args: tuple[str, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(JobError, match=message):
        run_in(scripts if folder_given else None, *args, **kwargs)


def test_option_rendering() -> None:
    assert as_options({"n": 1.5, "none": None, "on": True, "obj": [1, {"a": "b"}]}) == [
        "--n",
        "1.5",
        "--on",
        "--obj",
        "1",
        "--obj",
        json.dumps({"a": "b"}),
    ]
