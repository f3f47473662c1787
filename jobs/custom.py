"""CustomScriptJob: runs a script from the scripts folder by name, with parameters.

The scripts folder is the first configured script root (CRONWELL_SCRIPT_ROOTS). The
name is looked up there as given, then with `.py` and then `.sh` appended, so
`{"pub_args": ["rotate_logs"]}` finds `rotate_logs.sh`. The script runs through the
same runner, and so the same path rules, as a scheduled script: it must resolve
(symlinks followed) inside the script roots; a `.py` file runs as a python script
(`main(*args)`), anything else as an executable or bash script, never via a shell.

Arguments: pub_args after the name are passed first, in order; then every pub_kwargs
entry becomes options, in the order given:
- `{"days": 7}` -> `--days 7`, `{"name": "x y"}` -> `--name "x y"` (one argv item)
- `{"dry_run": true}` -> `--dry_run` (a flag); `false` or null -> left out
- `{"tag": ["a", "b"]}` -> `--tag a --tag b`
- `{"filter": {"x": 1}}` -> `--filter {"x": 1}` (an object as JSON text)
Values are turned into text as scheduled script arguments are (`runners.script_argument`:
strings as they are, anything else as JSON).
Keys are used as written (letters, digits, `_` and `-`, starting with a letter or digit).

The run is limited by `Settings.extra["custom_script_timeout"]` seconds (no limit by
default), its output capped at `Settings.output_cap`, and it stops when the execution
is cancelled. Anything but a completed run fails the execution with the runner's error.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from engine.model import JobKind, Status
from jobs.base import Argument, BaseJob, JobError
from jobs.params import ANY_ARGS, ANY_KWARGS, required_text, setting_seconds
from runners import script_argument
from runners.scripts import run_script

OPTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SUFFIXES = ("", ".py", ".sh")
TIMEOUT_KEY = "custom_script_timeout"


def as_options(parameters: Mapping[str, Any]) -> list[str]:
    """pub_kwargs as `--key value` arguments (see the module docstring)."""
    argv: list[str] = []
    for key, value in parameters.items():
        if not OPTION_NAME.match(key):
            raise JobError(f"parameter name {key!r} cannot be an option (letters, digits, _ and -)")
        option = f"--{key}"
        if value is True:
            argv.append(option)
        elif value is False or value is None:
            continue
        elif isinstance(value, list | tuple):
            for item in value:
                argv += [option, script_argument(item)]
        else:
            argv += [option, script_argument(value)]
    return argv


def find_script(folder: Path, name: str) -> Path:
    """The first of name, name.py, name.sh that is a file in the folder (the runner then
    checks it resolves inside the roots, symlinks followed)."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise JobError(f"script_name must be a name inside the scripts folder, not {name!r}")
    for suffix in SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    tried = ", ".join(f"{name}{suffix}" for suffix in SUFFIXES)
    raise JobError(f"No script named {name!r} in {folder} (tried {tried})")


class CustomScriptJob(BaseJob):
    description: ClassVar[str] = "Job to run custom scripts"
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument(
            "script_name",
            "string",
            "Script in the scripts folder (first script root)",
            required=True,
            source="pub_args",
        ),
        Argument(
            ANY_ARGS, "array", "Further positional arguments for the script", source="pub_args"
        ),
        Argument(
            ANY_KWARGS, "object", "Parameters, passed as --key value options", source="pub_kwargs"
        ),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        name = required_text(args, 0, "script_name", type(self).__name__)
        settings = self.context.settings
        if not settings.script_roots:
            raise JobError("CustomScriptJob needs a scripts folder: set CRONWELL_SCRIPT_ROOTS")
        path = find_script(settings.script_roots[0].absolute(), name)
        argv = [script_argument(value) for value in args[1:]] + as_options(kwargs)
        kind = JobKind.PYTHON if path.suffix == ".py" else JobKind.BASH
        timeout = (
            setting_seconds(settings.extra, TIMEOUT_KEY, 1.0)
            if TIMEOUT_KEY in settings.extra
            else None
        )
        outcome = run_script(  # refused paths come back as FAILED outcomes
            kind,
            path,
            argv,
            roots=settings.script_roots,
            timeout=timeout,
            output_cap=settings.output_cap,
            cancel=self.context.cancel,
            env=self.context.env,
            run_as=self.context.services.run_as,
        )
        print(f"$ {shlex.join([path.name, *argv])}")
        if outcome.output:
            print(outcome.output, end="" if outcome.output.endswith("\n") else "\n")
        if outcome.status != Status.COMPLETED:
            raise JobError(outcome.error or f"Script {path.name} ended {outcome.status}")
        return {
            "script": str(path),
            "kind": str(kind),
            "args": argv,
            "exit_code": outcome.exit_code,
            "return_value": outcome.return_value,
        }
