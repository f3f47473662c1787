"""The layer contracts in setup.cfg really fail on a circle: checked on a scratch copy.

`make lint` runs import-linter over the tree; this test shows that the same contracts
break when a deliberate violation is added, so a green lint means something.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("engine", "runners", "stores", "jobs", "api", "bench")


def scratch_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    copy.mkdir()
    for name in PACKAGES:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", copy / "setup.cfg")
    return copy


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "setup.cfg", "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scratch_copy(tmp_path_factory.mktemp("layers"))


def test_the_tree_as_it_is_keeps_every_contract(tree: Path) -> None:
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" in done.stdout and "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("engine/clock.py", "import stores.base  # a deliberate circle"),
        ("engine/model.py", "import api.app  # engine reaching up to the API"),
        ("runners/paths.py", "import jobs.registry  # runners reaching up to jobs"),
        ("stores/codec.py", "import runners.values  # two siblings tied together"),
        ("engine/ids.py", "import sqlite3  # a database driver in the engine"),
    ],
)
def test_a_deliberate_violation_breaks_the_lint(tmp_path: Path, module: str, line: str) -> None:
    copy = scratch_copy(tmp_path)
    path = copy / module
    path.write_text(path.read_text() + f"\n{line}\n")
    done = lint_imports(copy)
    assert done.returncode != 0, done.stdout
    assert "BROKEN" in done.stdout
