"""Child-interpreter host for python scripts: import the file, call `main(*args)`, and
send the return value back through a private result file, so the script's stdout
stays its own output.

Started by runners.scripts as `python -P pyhost.py RESULT_FILE SCRIPT [ARGS...]`
(`-P`: this file's folder is not put on sys.path, so `runners/*.py` cannot shadow a
module the script imports; the script's own folder is, as `python SCRIPT` would do).
Standard library only: it must not depend on the service's packages being importable.
Lean imports (no typing/pathlib; traceback only on failure): every python-script run
pays this file's start-up.

Result file, one JSON object: {"ok": true, "value": V} for a JSON-safe return value,
{"ok": true, "repr": "..."} for any other, {"ok": false, "error": "traceback"} when
importing or main() fails. `sys.exit(n)` is left alone: the exit code tells.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
from types import ModuleType, TracebackType

MODULE_NAME = "__cronwell_script__"


class ScriptError(Exception):
    """A script the host cannot call (no main(), not importable as source)."""


def load(script: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(MODULE_NAME, script)
    if spec is None or spec.loader is None:
        raise ScriptError(f"{script} cannot be imported as a python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # dataclasses and pickle look their module up
    spec.loader.exec_module(module)
    return module


def encode(value: object) -> str:
    try:
        return json.dumps({"ok": True, "value": value}, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<{type(value).__name__} object; repr() failed: {exc}>"
    return json.dumps({"ok": True, "repr": text})


def user_traceback(exc: BaseException) -> str:
    """The traceback without the host's and importlib's own leading frames."""
    import traceback

    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _is_machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _is_machinery(filename: str) -> bool:
    return filename == __file__ or filename.startswith("<frozen importlib")


def call_main(script: str, args: list[str]) -> tuple[bool, str]:
    """Whether main() returned, and the result record (SystemExit passes through)."""
    try:
        module = load(script)
        entry = getattr(module, "main", None)
        if not callable(entry):
            raise ScriptError(
                f"{script} defines no main() function; the scheduler calls main(*args)"
            )
        return True, encode(entry(*args))
    except ScriptError as exc:
        return False, json.dumps({"ok": False, "error": str(exc)})
    except Exception as exc:
        return False, json.dumps({"ok": False, "error": user_traceback(exc)})


def main(argv: list[str]) -> int:
    result_file, script, *args = argv
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # output so far survives a timeout kill
    returned, record = call_main(script, args)
    with open(result_file, "w", encoding="utf-8") as result:
        result.write(record)
    return 0 if returned else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
