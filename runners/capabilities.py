"""Starting scripts as another user without being root: four Linux capabilities.

Switching a child to CRONWELL_RUN_AS's user takes CAP_SETUID and CAP_SETGID (setuid,
setgroups); handing it its private result file takes CAP_CHOWN; stopping it on a
timeout or a cancel (a signal to another user's process group) takes CAP_KILL. A
service running as root has them all. The container image runs the service as its
own unprivileged user holding just these four (its entrypoint starts it through
`setpriv` with them as ambient capabilities, the bounding set cut down to them), so
the service is not root and its scripts, another user, cannot read its data.

Ambient (and inheritable) capabilities pass through `execve` to every program a
process starts: a script would get CAP_SETUID and could become the service's user
again. So the service clears both sets of its own at start (`keep_from_children`),
keeping its effective and permitted ones: a child then loses every capability at its
`execve` (a script file carries no file capabilities), whichever user it runs as.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

log = logging.getLogger(__name__)

CAP_CHOWN = 0
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
#: what starting, handing a file to and stopping another user's child takes
SWITCHING = (CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_KILL)
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def capability_sets(status: str | None = None) -> dict[str, int]:
    """This process's capability sets from /proc/self/status (Inh, Prm, Eff, Bnd, Amb),
    each a bit mask; {} where /proc has none (not Linux)."""
    try:
        text = status if status is not None else Path("/proc/self/status").read_text()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Cap") and value.strip():
            found[key[3:]] = int(value.strip(), 16)
    return found


def has_effective(*capabilities: int) -> bool:
    effective = capability_sets().get("Eff", 0)
    return all(effective >> cap & 1 for cap in capabilities)


def keep_from_children() -> bool:
    """Clear this process's ambient and inheritable capabilities, so that no program it
    starts inherits any (see the module docstring); True when there were some."""
    sets = capability_sets()
    if not sets.get("Amb") and not sets.get("Inh"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if sets.get("Amb"):
        libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _Header(_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    if libc.capget(ctypes.byref(header), data) == 0:
        data[0].inheritable = data[1].inheritable = 0
        if libc.capset(ctypes.byref(header), data) != 0:
            log.error("could not clear the inheritable capabilities (errno %d)", ctypes.get_errno())
    left = capability_sets()
    if left.get("Amb") or left.get("Inh"):
        raise OSError(f"capabilities would reach child processes: {left}")
    log.info("ambient and inheritable capabilities cleared: children start with none")
    return True
