"""Bash and python scripts, run as child processes after the script-path checks.

BASH: the resolved file itself is executed, `[path, *args]`, so its shebang decides
the interpreter (the scripts seed requires the execute bit). PYTHON: a child
interpreter runs `pyhost.py`, which imports the file and calls `main(*args)`; the
return value comes back through a private temp file, never stdout. A child
interpreter means a crash, a hang or `sys.exit` cannot harm the service, and the
timeout can kill it. Both run with the script's folder as the working directory.

The paths are checked again here, at run time, because the file system may have
changed since the job was scheduled. `run_script` never raises for a refused path:
that is a FAILED outcome carrying the ScriptPathError message.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import ScriptPathError
from engine.interfaces import CancelSignal, Outcome, OutputSink
from engine.model import JobKind, Status
from runners.environment import child_environment
from runners.identity import RunAs
from runners.interpreter import PYHOST
from runners.paths import check_runnable, resolve_script
from runners.process import DEFAULT_GRACE, ProcessResult, run_process
from runners.values import RESULT_SLACK, dropped_note


def run_script(
    kind: JobKind,
    path: str | os.PathLike[str],
    args: Sequence[str],
    *,
    roots: Sequence[Path],
    timeout: float | None,
    output_cap: int,
    cancel: CancelSignal,
    grace: float = DEFAULT_GRACE,
    execution_id: str | None = None,
    env: Mapping[str, str] | None = None,
    run_as: RunAs | None = None,
    live: OutputSink | None = None,
    on_start: Callable[[], None] | None = None,
) -> Outcome:
    """Check the path, then run the script to an Outcome (see the module docstring);
    `execution_id` is named in the child's environment (runners/lifeline.py). The
    script sees the allow-listed service variables and `env`, nothing else; with
    `run_as` it runs as that OS user; its output also goes to `live` as it is printed,
    when given; `on_start` is called once its process is spawned."""
    if kind not in (JobKind.BASH, JobKind.PYTHON):
        return Outcome(Status.FAILED, error=f"run_script runs bash and python scripts, not {kind}")
    try:
        script = resolve_script(path, roots)
        check_runnable(script, kind)
    except ScriptPathError as exc:
        return Outcome(Status.FAILED, error=str(exc))
    argv = [str(arg) for arg in args]
    environment = child_environment(env)
    if kind is JobKind.BASH:
        result = run_process(
            [str(script), *argv],
            timeout=timeout,
            output_cap=output_cap,
            cancel=cancel,
            cwd=script.parent,
            env=environment,
            grace=grace,
            execution_id=execution_id,
            run_as=run_as,
            live=live,
            on_start=on_start,
        )
        return result.to_outcome()
    return _run_python(
        script,
        argv,
        timeout=timeout,
        output_cap=output_cap,
        cancel=cancel,
        grace=grace,
        execution_id=execution_id,
        env=environment,
        run_as=run_as,
        live=live,
        on_start=on_start,
    )


def _run_python(
    script: Path,
    args: list[str],
    *,
    timeout: float | None,
    output_cap: int,
    cancel: CancelSignal,
    grace: float,
    execution_id: str | None,
    env: Mapping[str, str],
    run_as: RunAs | None,
    live: OutputSink | None,
    on_start: Callable[[], None] | None,
) -> Outcome:
    folder, name = _result_file(run_as)
    result_file = Path(name)
    python = sys.executable if run_as is None else run_as.python  # one it can start
    try:
        result = run_process(
            [python, "-P", str(PYHOST), name, str(script), *args],
            timeout=timeout,
            output_cap=output_cap,
            cancel=cancel,
            cwd=script.parent,
            env=env,
            grace=grace,
            execution_id=execution_id,
            run_as=run_as,
            live=live,
            on_start=on_start,
        )
        reply = read_reply(result_file, output_cap)
    finally:
        result_file.unlink(missing_ok=True)
        if folder is not None:
            os.rmdir(folder)
    return python_outcome(result, reply)


def _result_file(run_as: RunAs | None) -> tuple[str | None, str]:
    """(its private folder or None, the path) of the file the host writes its result to.

    As the service's own user, a temp file. For another user, the file is that user's
    (the host writes it) in the service's group, mode 0640, so a service that is not
    root (and cannot override file modes) still reads it; it sits in a folder of the
    service's own, mode 0711, so the service may delete it afterwards (it could not
    in the sticky /tmp, the file being another user's) and nobody else may list or
    add anything there."""
    if run_as is None:
        handle, name = tempfile.mkstemp(prefix="cronwell-result-", suffix=".json")
        os.close(handle)
        return None, name
    folder = tempfile.mkdtemp(prefix="cronwell-result-")
    os.chmod(folder, 0o711)
    name = os.path.join(folder, "result.json")
    handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(handle, 0o640)  # first: once it is that user's, only that user may
        os.fchown(handle, run_as.uid, os.getegid())
    finally:
        os.close(handle)
    return folder, name


def read_reply(result_file: Path, output_cap: int) -> dict[str, Any] | None:
    """The host's result record; None when it wrote none (sys.exit, killed). A record
    larger than the cap is not loaded: it is replaced by a note saying so."""
    try:
        size = result_file.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    if size > output_cap + RESULT_SLACK:
        with result_file.open("rb") as head:
            returned = head.read(16).startswith(b'{"ok": true')
        if returned:
            return {"ok": True, "repr": dropped_note(size, output_cap)}
        error = f"main() failed; its traceback ({size} bytes) is over the {output_cap}-byte cap"
        return {"ok": False, "error": error}
    try:
        record = json.loads(result_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):  # killed while writing it
        return None
    return record if isinstance(record, dict) else None


def python_outcome(result: ProcessResult, reply: dict[str, Any] | None) -> Outcome:
    """The process outcome, with main()'s return value or its traceback folded in."""
    outcome = result.to_outcome()
    if reply is None or result.status not in (Status.COMPLETED, Status.FAILED):
        return outcome
    if reply.get("ok"):
        outcome.return_value = reply["value"] if "value" in reply else reply.get("repr")
    else:
        outcome.status = Status.FAILED
        outcome.error = str(reply.get("error", "main() failed"))
    return outcome
