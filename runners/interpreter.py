"""Which python interpreter runs python scripts for another OS user (CRONWELL_RUN_AS).

A python script runs in a child interpreter (runners/pyhost.py). As the service's own
user that is the service's interpreter, `sys.executable`. As another user it may not
be: a pyenv or a virtual environment under a 0700 /root, say, cannot even be started
by that user, and every python script would fail with a permission error. So when
scripts switch users the interpreter is chosen once, at start, by starting each
candidate as that user (with `-P`, as pyhost is started, opening pyhost.py): the one
configured (CRONWELL_RUN_AS_PYTHON; refused as a configuration error when that user
cannot run it), else the service's own, else the system's (`/usr/bin/python3`,
`/usr/local/bin/python3`). What was chosen and why is said in the start-up log and by
`cronwell serve --check` (runners/identity.py `describe_identity`). A system
interpreter has none of the service's virtual environment's packages: scripts that
need some should name an interpreter that has them.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidInput

PYHOST = Path(__file__).with_name("pyhost.py")
#: interpreters tried after the service's own, in order
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
#: what a candidate must do as the user: run with -P (3.11+) and read the host file
PROBE = "import sys; open(sys.argv[1], 'rb').close()"
PROBE_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Interpreter:
    #: the interpreter python scripts are started with
    path: str
    #: one sentence on why this one (for the start-up log and --check)
    why: str
    #: False when no candidate could be run by the user (python scripts will fail)
    usable: bool = True


def runnable_by(python: str, uid: int, gid: int, groups: tuple[int, ...]) -> bool:
    """Whether `python` starts as that user and can read pyhost.py (a real start of
    the interpreter as that user: permissions on every folder and library count)."""
    try:
        done = subprocess.run(  # noqa: PLW1510
            [python, "-P", "-c", PROBE, str(PYHOST)],
            user=uid,
            group=gid,
            extra_groups=list(groups),
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def python_for(
    user: str, uid: int, gid: int, groups: tuple[int, ...], configured: str = ""
) -> Interpreter:
    """The interpreter python scripts run with as this user (see the module docstring)."""
    if configured:
        if not runnable_by(configured, uid, gid, groups):
            raise InvalidInput(
                f"CRONWELL_RUN_AS_PYTHON={configured} cannot be run by {user} "
                f"(or cannot read {PYHOST}): python scripts would fail"
            )
        return Interpreter(configured, f"python scripts run with {configured} (configured)")
    own = sys.executable
    if runnable_by(own, uid, gid, groups):
        return Interpreter(own, f"python scripts run with the service's interpreter {own}")
    for candidate in SYSTEM_PYTHONS:
        if candidate != own and runnable_by(candidate, uid, gid, groups):
            return Interpreter(
                candidate,
                f"python scripts run with {candidate}: {user} cannot run the service's "
                f"interpreter {own} (it has none of the service's packages; set "
                "CRONWELL_RUN_AS_PYTHON to choose another)",
            )
    return Interpreter(
        own,
        f"python scripts will fail: {user} can run neither the service's interpreter {own} "
        f"nor {' nor '.join(SYSTEM_PYTHONS)} (or cannot read {PYHOST}); set "
        "CRONWELL_RUN_AS_PYTHON to one it can",
        usable=False,
    )
