"""Which OS user scripts run as: CRONWELL_RUN_AS=user[:group], as cron does.

A script running as the service's own user can read everything the service can: its
database, its secret key (and so decrypt every stored password), its backups. When the
service may switch users (it runs as root), scripts start as the configured user
instead, with that user's groups and HOME, so files the service keeps at mode 0600
are closed to them. Where it cannot switch, `describe_identity` says plainly that
scripts share the service's user; the start-up log and `cronwell serve --check` print it.
Python scripts need an interpreter that user can start: it is chosen at start
(runners/interpreter.py) and named in the same sentence.
"""

from __future__ import annotations

import grp
import os
import pwd
import sys
from dataclasses import dataclass, replace

from engine.errors import InvalidInput
from runners.capabilities import SWITCHING, has_effective
from runners.interpreter import python_for


@dataclass(frozen=True, slots=True)
class RunAs:
    """The OS identity a child process is started with."""

    user: str
    uid: int
    gid: int
    home: str
    groups: tuple[int, ...] = ()
    #: the interpreter python scripts start with as this user (runners/interpreter.py)
    python: str = sys.executable
    #: why that interpreter, in one sentence
    python_why: str = ""
    #: False when that user can start no interpreter (python scripts will fail)
    python_usable: bool = True


def can_switch_users() -> bool:
    """Whether this process may start children as another user: it is root, or holds
    the four capabilities that takes (runners/capabilities.py; the container image)."""
    return os.geteuid() == 0 or has_effective(*SWITCHING)


def parse_run_as(text: str) -> RunAs:
    """`user` or `user:group` (names or numeric ids) of existing accounts; InvalidInput
    otherwise. The user's supplementary groups come along, as login would give them."""
    user_text, _, group_text = text.strip().partition(":")
    if not user_text:
        raise InvalidInput("CRONWELL_RUN_AS must be user or user:group")
    try:
        entry = pwd.getpwuid(int(user_text)) if user_text.isdigit() else pwd.getpwnam(user_text)
    except (KeyError, OverflowError):
        raise InvalidInput(f"CRONWELL_RUN_AS: no such user {user_text!r}") from None
    gid = entry.pw_gid
    if group_text:
        try:
            group = (
                grp.getgrgid(int(group_text)) if group_text.isdigit() else grp.getgrnam(group_text)
            )
        except (KeyError, OverflowError):
            raise InvalidInput(f"CRONWELL_RUN_AS: no such group {group_text!r}") from None
        gid = group.gr_gid
    groups = tuple(sorted({g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem}))
    return RunAs(entry.pw_name, entry.pw_uid, gid, entry.pw_dir, groups)


def script_identity(text: str, python: str = "") -> RunAs | None:
    """The identity scripts run as: the configured one when the service may switch,
    with the interpreter its python scripts start with (`python`, CRONWELL_RUN_AS_PYTHON,
    when set; InvalidInput when that user cannot run it), else None (they share the
    service's user and its interpreter)."""
    if not text.strip():
        return None
    run_as = parse_run_as(text)
    if not can_switch_users():
        return None
    chosen = python_for(run_as.user, run_as.uid, run_as.gid, run_as.groups, python)
    return replace(run_as, python=chosen.path, python_why=chosen.why, python_usable=chosen.usable)


def describe_identity(text: str, python: str = "", run_as: RunAs | None = None) -> str:
    """One plain sentence on whom scripts run as (for the start-up log and --check);
    `run_as` is what script_identity already chose, when the caller has it."""
    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a container's uid without a passwd entry
        me = f"uid {os.geteuid()}"
    if text.strip():
        if can_switch_users():
            chosen = run_as or script_identity(text, python)
            assert chosen is not None
            return (
                f"scripts run as {chosen.user} (uid {chosen.uid}, gid {chosen.gid}); "
                f"{chosen.python_why}"
            )
        run_as = parse_run_as(text)
        return (
            f"scripts share the service's user {me}: CRONWELL_RUN_AS={text.strip()} needs the "
            "service to run as root (or with CAP_SETUID, CAP_SETGID, CAP_CHOWN and CAP_KILL) "
            "to switch users, so scripts can read the service's data files"
        )
    return (
        f"scripts share the service's user {me} and can read its data files "
        "(set CRONWELL_RUN_AS=user[:group] and run the service as root to separate them)"
    )
