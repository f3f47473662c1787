"""Which script files may run: inside the configured script roots, and runnable.

Checked when a job is scheduled (by the API) and again right before it runs (by the
runners), because the file system can change in between. Every refusal is a
ScriptPathError whose message names the rule that failed and the roots.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from engine.errors import ScriptPathError
from engine.model import JobKind


def resolve_script(path: str | os.PathLike[str], roots: Sequence[Path]) -> Path:
    """The script's real path (symlinks followed, `..` collapsed), provided it is
    absolute, lies inside one of the (resolved) roots, exists and is a regular file.

    Containment is checked before existence, so a caller cannot probe for files
    outside the roots.
    """
    if not roots:
        raise ScriptPathError(
            "no script roots are configured, so no script may run: "
            "set CRONWELL_SCRIPT_ROOTS to the folders holding your scripts"
        )
    listed = _list_roots(roots)
    try:
        text: object = os.fspath(path)
    except TypeError:  # None or another non-path from an untyped caller
        text = path
    if not isinstance(text, str) or not text.strip():
        raise ScriptPathError(
            f"script path must be a non-empty string, not {text!r} (script roots: {listed})"
        )
    if not os.path.isabs(text):
        raise ScriptPathError(
            f"script path must be absolute, not {text!r} (script roots: {listed})"
        )
    opened = _open_real(text)
    resolved = opened[0] if opened is not None else _resolve(text, listed)
    if not any(_inside(resolved, root) for root in _resolved_roots(roots)):
        how = "" if resolved == text else f" (it resolves to {resolved})"
        raise ScriptPathError(
            f"script path {text} is outside the script roots{how}; allowed roots: {listed}"
        )
    try:
        mode = opened[1] if opened is not None else os.stat(resolved).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ScriptPathError(
                f"script path {text} cannot be resolved (a symlink loop); script roots: {listed}"
            ) from None
        raise ScriptPathError(f"script {text} does not exist (script roots: {listed})") from None
    if not stat.S_ISREG(mode):
        raise ScriptPathError(
            f"script {text} is not a regular file (a directory or device cannot run); "
            f"script roots: {listed}"
        )
    return Path(resolved)


def check_runnable(path: Path, kind: JobKind) -> None:
    """A bash script must carry the execute bit (the scripts seed requires it and it
    is started directly, shebang honoured); a python script must be readable."""
    if kind is JobKind.BASH and not os.access(path, os.X_OK):
        raise ScriptPathError(
            f"bash script {path} is not executable: run `chmod +x {path}` to allow it"
        )
    if kind is JobKind.PYTHON and not os.access(path, os.R_OK):
        raise ScriptPathError(
            f"python script {path} is not readable by the service: run `chmod a+r {path}`"
        )


def _open_real(path: str) -> tuple[str, int] | None:
    """(real path, st_mode) of an existing file in four system calls, or None to take
    the portable way (`_resolve`, then `os.stat`).

    Where /proc is mounted, opening the path with O_PATH lets the kernel follow every
    symlink once, and /proc/self/fd names the file it reached: the same answer as
    realpath, which walks the path in Python with one lstat per component (most of a
    schedule-job request's own CPU). Anything unusual (missing file, loop, no /proc, a
    file deleted meanwhile) falls back, so refusals keep their messages and order.
    """
    if _O_PATH is None:
        return None
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        mode = os.fstat(fd).st_mode
    except OSError:
        return None
    finally:
        os.close(fd)
    if not real.startswith(os.sep) or real.endswith(" (deleted)"):
        return None
    return real, mode


_O_PATH: int | None = getattr(os, "O_PATH", None) if os.path.isdir("/proc/self/fd") else None


def _resolve(path: str, listed: str) -> str:
    """The real path as text: os.path.realpath is several times cheaper than
    Path.resolve, and this runs on every schedule-job request and every script run."""
    try:
        return os.path.realpath(path, strict=False)
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, NUL byte...
        raise ScriptPathError(
            f"script path {path} cannot be resolved ({exc}); script roots: {listed}"
        ) from None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _resolved_roots(roots: Sequence[Path]) -> list[str]:
    """The roots' real paths, resolved again at most every ROOTS_TTL seconds: a root
    that is itself a symlink may be repointed while the service runs."""
    key = tuple(roots)
    now = time.monotonic()
    cached = _roots_cache.get(key)
    if cached is not None and now - cached[0] < ROOTS_TTL:
        return cached[1]
    resolved: list[str] = []
    for root in roots:
        try:
            resolved.append(os.path.realpath(root, strict=False))
        except (OSError, RuntimeError, ValueError):
            continue  # an unusable root admits nothing
    if len(_roots_cache) > 64:
        _roots_cache.clear()
    _roots_cache[key] = (now, resolved)
    return resolved


ROOTS_TTL = 1.0
_roots_cache: dict[tuple[Path, ...], tuple[float, list[str]]] = {}


def _list_roots(roots: Sequence[Path]) -> str:
    return ", ".join(str(root) for root in roots)
