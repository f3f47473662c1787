"""Script-path rules: inside the roots (symlinks followed), a regular file, runnable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import InvalidInput, ScriptPathError
from engine.model import JobKind
from runners import paths
from runners.paths import check_runnable, resolve_script


@pytest.fixture(autouse=True, params=["proc-fd", "portable"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every case runs on both ways of finding the real path: O_PATH + /proc/self/fd,
    and realpath + stat (where /proc is missing); they must agree on every answer."""
    if request.param == "portable":
        monkeypatch.setattr(paths, "_O_PATH", None)
    else:
        assert paths._O_PATH is not None, "this Linux machine has /proc/self/fd"
    return str(request.param)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "job.sh").write_text("#!/bin/sh\nexit 0\n")
    (folder / "job.sh").chmod(0o755)
    return folder


def test_a_file_inside_the_root_resolves_to_its_real_path(root: Path) -> None:
    assert resolve_script(str(root / "job.sh"), [root]) == (root / "job.sh").resolve()


def test_dotdot_that_stays_inside_the_root_is_collapsed(root: Path) -> None:
    (root / "sub").mkdir()
    path = f"{root}/sub/../job.sh"
    assert resolve_script(path, [root]) == (root / "job.sh").resolve()


def test_a_symlink_inside_the_root_to_a_file_inside_is_allowed(root: Path) -> None:
    (root / "alias.sh").symlink_to(root / "job.sh")
    assert resolve_script(str(root / "alias.sh"), [root]) == (root / "job.sh").resolve()


def test_a_root_given_through_a_symlink_is_resolved_too(root: Path, tmp_path: Path) -> None:
    linked_root = tmp_path / "linked"
    linked_root.symlink_to(root)
    assert resolve_script(str(root / "job.sh"), [linked_root]) == (root / "job.sh").resolve()


def test_any_of_several_roots_admits(root: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_script(str(root / "job.sh"), [other, root]).name == "job.sh"


def refusal(path: str, roots: list[Path]) -> str:
    with pytest.raises(ScriptPathError) as caught:
        resolve_script(path, roots)
    assert isinstance(caught.value, InvalidInput)
    return str(caught.value)


def test_a_relative_path_is_refused(root: Path) -> None:
    message = refusal("scripts/job.sh", [root])
    assert "must be absolute" in message and str(root) in message


def test_dotdot_traversal_out_of_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    (tmp_path / "evil.sh").write_text("#!/bin/sh\n")
    message = refusal(f"{root}/../evil.sh", [root])
    assert "outside the script roots" in message
    assert str(tmp_path / "evil.sh") in message and str(root) in message


def test_a_symlink_inside_the_root_pointing_outside_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\n")
    (root / "escape.sh").symlink_to(outside)
    message = refusal(str(root / "escape.sh"), [root])
    assert "outside the script roots" in message and f"resolves to {outside}" in message


def test_a_root_prefix_is_not_containment(root: Path, tmp_path: Path) -> None:
    sibling = tmp_path / "scripts-evil"
    sibling.mkdir()
    (sibling / "x.sh").write_text("#!/bin/sh\n")
    assert "outside the script roots" in refusal(str(sibling / "x.sh"), [root])


def test_a_directory_is_refused(root: Path) -> None:
    (root / "folder").mkdir()
    assert "not a regular file" in refusal(str(root / "folder"), [root])


def test_a_missing_file_is_refused(root: Path) -> None:
    assert "does not exist" in refusal(str(root / "nope.sh"), [root])


def test_a_missing_file_outside_the_roots_reads_as_outside(root: Path) -> None:
    assert "outside the script roots" in refusal("/nonexistent/nope.sh", [root])


def test_no_roots_is_its_own_error(root: Path) -> None:
    assert "no script roots are configured" in refusal(str(root / "job.sh"), [])


def test_empty_and_nul_paths_are_refused(root: Path) -> None:
    assert "non-empty string" in refusal("", [root])
    assert "cannot be resolved (embedded null byte)" in refusal(f"{root}/a\0b", [root])


def test_a_symlink_loop_is_refused(root: Path) -> None:
    (root / "loop").symlink_to(root / "loop")
    assert "cannot be resolved" in refusal(str(root / "loop"), [root])


def test_bash_without_the_execute_bit_names_the_fix(root: Path) -> None:
    script = root / "plain.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    with pytest.raises(ScriptPathError, match=rf"chmod \+x {script}"):
        check_runnable(script, JobKind.BASH)


def test_bash_with_the_execute_bit_and_a_readable_python_pass(root: Path) -> None:
    check_runnable(root / "job.sh", JobKind.BASH)
    (root / "job.py").write_text("def main():\n    return 1\n")
    check_runnable(root / "job.py", JobKind.PYTHON)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_an_unreadable_python_script_is_refused(root: Path) -> None:
    script = root / "secret.py"
    script.write_text("def main():\n    return 1\n")
    script.chmod(0o000)
    with pytest.raises(ScriptPathError, match="not readable"):
        check_runnable(script, JobKind.PYTHON)
