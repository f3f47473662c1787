"""`make image-test`: build the Dockerfile with podman and run what it built.

No image registry and no OCI runtime are available on the build machines, so:

1. podman and mmdebstrap are installed with apt when missing (CI is root on Debian 12);
2. a Debian bookworm base (python3, python3-venv, passwd, ca-certificates, this
   machine's CA bundle and a pip.conf naming it) is made with mmdebstrap and imported
   into podman; it is cached under a tag that hashes its recipe and the CA bundle, and
   remade after BASE_MAX_AGE_DAYS, so Debian's security updates still arrive;
3. the project's Dockerfile is built with `podman build --isolation=chroot` and
   BASE_IMAGE set to that base;
4. the image's root filesystem is exported into a temporary folder and its ENTRYPOINT
   and CMD run there with `chroot --userspec` as the image's USER, with its ENV and
   WORKDIR (CRONWELL_HOST and CRONWELL_PORT overridden to a free loopback port, as
   `docker run -e` would), and checked: the service runs as the data dir's owner, not
   root, holding only the capabilities that switching users takes and passing none on;
   health over HTTP, the image's own HEALTHCHECK command, the data dir (0700, its files
   the service's, the database and key 0600); a scheduled bash script and a python
   script from the image's script root run as CRONWELL_RUN_AS's user with no
   capability, try to read the database and the key file and are refused; and a clean
   exit on the image's STOPSIGNAL;
5. everything made for the run is removed (the cached base is kept); a run that was
   killed midway is cleaned up by the next one.

Standard library only; run as root: `python3 tests/image/build_and_run.py`.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BASE_REPO = "localhost/cronwell-image-test-base"
IMAGE_REPO = "localhost/cronwell-image-test"
CONTAINER_PREFIX = "cronwell-image-test-"
WORK_PARENT = Path("/var/tmp/cronwell-image-test")
LOCK_FILE = Path("/run/lock/cronwell-image-test.lock")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BASE_MAX_AGE_DAYS = 7
BASE_SUITE = "bookworm"
BASE_VARIANT = "minbase"
# What the Dockerfile's stages need from the base: python3 with venv for both stages,
# groupadd/useradd for the runtime user, the CA store for pip; bash is Essential.
BASE_PACKAGES = ("python3", "python3-venv", "passwd", "ca-certificates")
PIP_CONF = f"[global]\ncert = {CA_BUNDLE}\n"
# Bump when the way the base is made changes, so a cached base is not reused.
RECIPE_VERSION = 1
# Device nodes a container runtime gives every container (name, major, minor).
DEVICES = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)
SCRIPT_NAME = "image-test.sh"
PYTHON_SCRIPT_NAME = "image-test.py"
# Says who runs it, with which capabilities, and whether it can read the files given
# after the token (the service's database and key); leaves a file, so the run is seen
# from outside the service too. It writes to /tmp, not the data dir: scripts run as a
# user of their own that has no business in the service's data.
SCRIPT = """#!/bin/bash
set -u
token=$1
shift
caps=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
echo "token=$token uid=$(id -u) gid=$(id -g) cwd=$PWD capeff=$caps"
for file in "$@"; do
  if cat "$file" > /dev/null 2>&1; then echo "READ=$file"; else echo "DENIED=$file"; fi
done
echo "$token" > "/tmp/image-test-$token.txt"
"""
PYTHON_SCRIPT = """import os

def main(token, *paths):
    with open("/proc/self/status") as status:
        caps = [line.split()[1] for line in status if line.startswith("CapEff:")][0]
    print(f"token={token} uid={os.getuid()} gid={os.getgid()} capeff={caps}")
    for path in paths:
        try:
            open(path, "rb").close()
            print(f"READ={path}")
        except PermissionError:
            print(f"DENIED={path}")
    with open(f"/tmp/image-test-{token}.txt", "w") as out:
        out.write(token)
    return {"token": token, "uid": os.getuid()}
"""


class Failure(Exception):
    """A check failed; the message says which and what was seen."""


def log(message: str) -> None:
    print(f"image-test: {message}", flush=True)


def run(
    command: Sequence[str], *, timeout: float, log_file: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command; with log_file its output goes there (its tail is shown on failure)."""
    if log_file is None:
        result = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, check=False
        )
    else:
        with log_file.open("a") as out:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            result = subprocess.run(
                list(command),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
    if check and result.returncode != 0:
        detail = result.stderr if log_file is None else tail(log_file, 60)
        raise Failure(f"{command[0]} {command[1]} exited {result.returncode}:\n{detail}")
    return result


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


# -- 1. tools ---------------------------------------------------------------------------


def ensure_tools(work: Path) -> None:
    missing = [tool for tool in ("podman", "mmdebstrap", "chroot") if not shutil.which(tool)]
    if not missing:
        return
    packages = [{"chroot": "coreutils"}.get(tool, tool) for tool in missing]
    log(f"installing {' '.join(packages)} with apt")
    env_log = work / "apt.log"
    run(["apt-get", "update"], timeout=600, log_file=env_log)
    os.environ["DEBIAN_FRONTEND"] = "noninteractive"
    run(["apt-get", "install", "-y", *packages], timeout=900, log_file=env_log)
    still = [tool for tool in missing if not shutil.which(tool)]
    check(not still, f"apt installed {packages} but {still} are still not on PATH")


# -- 2. the base ------------------------------------------------------------------------


def base_tag() -> str:
    recipe = {
        "version": RECIPE_VERSION,
        "suite": BASE_SUITE,
        "variant": BASE_VARIANT,
        "packages": BASE_PACKAGES,
        "pip_conf": PIP_CONF,
        "ca_bundle": hashlib.sha256(CA_BUNDLE.read_bytes()).hexdigest(),
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return f"{BASE_REPO}:{digest[:16]}"


def image_labels(ref: str) -> dict[str, str] | None:
    """The image's labels, or None when podman has no such image."""
    found = run(["podman", "image", "inspect", ref], timeout=60, check=False)
    if found.returncode != 0:
        return None
    labels = json.loads(found.stdout)[0].get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def ensure_base(work: Path, fresh: bool) -> str:
    tag = base_tag()
    labels = image_labels(tag)
    if labels is not None and not fresh:
        made = float(labels.get("cronwell.image-test.made", "0"))
        age = time.time() - made
        if 0 <= age < BASE_MAX_AGE_DAYS * 86400:
            log(f"base {tag} cached ({age / 3600:.1f} h old)")
            return tag
        log(f"base {tag} is {age / 86400:.1f} days old: making it again")
    start = time.monotonic()
    tarball = work / "base.tar"
    hooks = [
        f'cp {CA_BUNDLE} "$1{CA_BUNDLE}"',
        f"printf '%s' '{PIP_CONF}' > \"$1/etc/pip.conf\"",
    ]
    command = [
        "mmdebstrap",
        f"--variant={BASE_VARIANT}",
        f"--include={','.join(BASE_PACKAGES)}",
        *(f"--customize-hook={hook}" for hook in hooks),
        BASE_SUITE,
        str(tarball),
    ]
    run(command, timeout=1800, log_file=work / "mmdebstrap.log")
    change = f"LABEL cronwell.image-test.made={int(time.time())}"
    run(["podman", "import", "--change", change, str(tarball), tag], timeout=600)
    tarball.unlink()
    log(f"base {tag} made with mmdebstrap in {time.monotonic() - start:.0f} s")
    forget_bases(keep=tag)
    return tag


def forget_bases(keep: str | None) -> None:
    """Remove cached bases other than `keep` (older recipes, CA bundles or ages)."""
    listed = run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], timeout=60)
    for ref in sorted(set(listed.stdout.split())):
        if ref.startswith(BASE_REPO + ":") and ref != keep:
            log(f"removing the cached base {ref}")
            run(["podman", "rmi", ref], timeout=120, check=False)


# -- 3. the build -----------------------------------------------------------------------


def build_image(work: Path, base: str, tag: str) -> None:
    start = time.monotonic()
    command = [
        "podman",
        "build",
        "--isolation=chroot",
        "--format=docker",
        "--pull=never",
        "--layers=false",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--tag",
        tag,
        "--file",
        str(ROOT / "Dockerfile"),
        str(ROOT),
    ]
    run(command, timeout=1800, log_file=work / "build.log")
    log(f"built {tag} from the Dockerfile in {time.monotonic() - start:.0f} s")


def image_config(tag: str) -> dict[str, Any]:
    inspected = json.loads(run(["podman", "image", "inspect", tag], timeout=60).stdout)[0]
    config: dict[str, Any] = dict(inspected["Config"])
    # podman shows a docker-format image's HEALTHCHECK beside Config, not in it
    config.setdefault("Healthcheck", inspected.get("Healthcheck"))
    return config


# -- 4. the run -------------------------------------------------------------------------


def export_rootfs(tag: str, container: str, rootfs: Path) -> None:
    """The image's files, as a container of it would see them, in a plain folder."""
    run(["podman", "create", "--name", container, tag], timeout=120)
    rootfs.mkdir()
    exporter = subprocess.Popen(["podman", "export", container], stdout=subprocess.PIPE)
    assert exporter.stdout is not None
    untar = subprocess.run(
        ["tar", "-x", "--numeric-owner", "-p", "-C", str(rootfs)],
        stdin=exporter.stdout,
        timeout=600,
        check=False,
    )
    exporter.stdout.close()
    if untar.returncode != 0:
        exporter.kill()
    check(exporter.wait(timeout=60) == 0, "podman export failed")
    check(untar.returncode == 0, "untarring the exported root filesystem failed")


def mount_runtime(rootfs: Path) -> None:
    """What a container runtime mounts: /proc, a small /dev; nothing of the host's /dev."""
    run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], timeout=30)
    dev = rootfs / "dev"
    dev.mkdir(exist_ok=True)
    run(["mount", "-t", "tmpfs", "-o", "mode=755,nosuid,size=1m", "tmpfs", str(dev)], timeout=30)
    for name, major, minor in DEVICES:
        os.mknod(dev / name, 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(dev / name, 0o666)
    (dev / "fd").symlink_to("/proc/self/fd")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        (dev / name).symlink_to(f"/proc/self/fd/{i}")
    (dev / "shm").mkdir()
    run(
        ["mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev,size=64m", "shm", str(dev / "shm")],
        timeout=30,
    )


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below path, deepest first."""
    found = []
    prefix = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point = line.split()[1].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def processes_in(rootfs: Path) -> list[int]:
    """Processes whose root is this rootfs: the service and its children, nothing else."""
    pids = []
    target = str(rootfs.resolve())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == target:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def user_ids(rootfs: Path, user: str) -> tuple[int, int, list[int], str]:
    """uid, gid, supplementary gids and home of the image's USER, from the image's own
    /etc/passwd and /etc/group (the host's may name other users)."""
    name, _, group = user.partition(":")
    passwd = [line.split(":") for line in (rootfs / "etc/passwd").read_text().splitlines()]
    groups = [line.split(":") for line in (rootfs / "etc/group").read_text().splitlines()]
    entry = next((p for p in passwd if name in (p[0], p[2])), None)
    if entry is None:
        check(name.isdigit(), f"USER {user} is not in the image's /etc/passwd")
        uid, gid, home, login = int(name), 0, "/", None  # Docker's group for such a uid
    else:
        uid, gid, home, login = int(entry[2]), int(entry[3]), entry[5], entry[0]
    if group:
        found = next((g for g in groups if group in (g[0], g[2])), None)
        check(found is not None or group.isdigit(), f"group {group} is not in the image")
        gid = int(found[2]) if found is not None else int(group)
    extra = sorted({int(g[2]) for g in groups if login and login in g[3].split(",")} - {gid})
    return uid, gid, extra, home


def image_uids(rootfs: Path) -> set[int]:
    return {int(line.split(":")[2]) for line in (rootfs / "etc/passwd").read_text().splitlines()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http(method: str, url: str, body: Any = None, timeout: float = 5) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class Service:
    """The image's entrypoint, started as the image would start it, inside rootfs."""

    def __init__(self, rootfs: Path, config: dict[str, Any], work: Path) -> None:
        self.rootfs = rootfs
        self.config = config
        self.log_path = work / "service.log"
        user = config.get("User") or "root"
        self.uid, self.gid, self.groups, home = user_ids(rootfs, user)
        self.env = dict(item.split("=", 1) for item in config.get("Env") or [])
        self.env.setdefault("HOME", home)
        self.workdir = config.get("WorkingDir") or "/"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def chroot(self, command: Sequence[str]) -> list[str]:
        """`command` in the rootfs as the image's user, from its WORKDIR; the environment
        is passed by the caller (chroot and env -C keep it)."""
        groups = ",".join(str(g) for g in [self.gid, *self.groups])
        return [
            "chroot",
            f"--userspec={self.uid}:{self.gid}",
            f"--groups={groups}",
            str(self.rootfs),
            "/usr/bin/env",
            "-C",
            self.workdir,
            "--",
            *command,
        ]

    def run_env(self) -> dict[str, str]:
        return {**self.env, "CRONWELL_HOST": "127.0.0.1", "CRONWELL_PORT": str(self.port)}

    def start(self) -> None:
        command = [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]
        check(bool(command), "the image has neither ENTRYPOINT nor CMD")
        for _ in range(3):  # another process may take the free port before the service
            self.port = free_port()
            with self.log_path.open("ab") as out:
                self.process = subprocess.Popen(
                    self.chroot(command),
                    env=self.run_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    status, body = http("GET", self.url("/api/health"), timeout=2)
                except (OSError, ValueError):
                    time.sleep(0.2)
                    continue
                check(status == 200, f"/api/health answered {status}: {body}")
                check(body.get("status") == "healthy", f"/api/health says {body}")
                return
            if self.process.poll() is None:
                raise Failure("/api/health did not answer within 60 s")
            if "address already in use" not in tail(self.log_path, 20).lower():
                raise Failure(f"the entrypoint exited {self.process.returncode} at start")
        raise Failure("no free loopback port could be kept for the service")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def healthcheck(self) -> int:
        """Exit status of the image's own HEALTHCHECK command, run as Docker would
        (`docker exec`: the image's user, env and workdir)."""
        test = (self.config.get("Healthcheck") or {}).get("Test") or []
        check(bool(test) and test[0] in {"CMD", "CMD-SHELL"}, f"no HEALTHCHECK: {test}")
        command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
        result = subprocess.run(
            self.chroot(command),
            env=self.run_env(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        return result.returncode

    def stop(self, timeout: float) -> int:
        assert self.process is not None
        signame = self.config.get("StopSignal") or "SIGTERM"
        self.process.send_signal(signal.Signals[signame])
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"still running {timeout:.0f} s after {signame}") from None


#: the capabilities the service may hold as its own user: CAP_CHOWN, CAP_KILL,
#: CAP_SETGID, CAP_SETUID (runners/capabilities.py), and none it could pass on
SWITCHING_CAPS = (1 << 0) | (1 << 5) | (1 << 6) | (1 << 7)


def check_image(rootfs: Path, config: dict[str, Any]) -> None:
    """What the image must be before it runs: no build leftovers, no build-time ENV, and
    a scripts user (CRONWELL_RUN_AS) of its own beside the data dir's owner."""
    for leftover in ("wheels", "src", "opt/build-venv"):
        check(not (rootfs / leftover).exists(), f"the runtime image carries /{leftover}")
    names = [item.split("=", 1)[0] for item in config.get("Env") or []]
    leaked = [n for n in names if any(w in n.upper() for w in ("PIP_", "PROXY", "TOKEN"))]
    check(not leaked, f"the image's ENV carries build-time settings: {leaked}")
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    check(bool(env.get("CRONWELL_RUN_AS")), "the image sets no CRONWELL_RUN_AS for its scripts")
    data = rootfs / env.get("CRONWELL_DATA_DIR", "/data").lstrip("/")
    owner = data.stat().st_uid
    script_uid = user_ids(rootfs, env["CRONWELL_RUN_AS"])[0]
    check(owner != 0, f"the image's data dir {data} belongs to root")
    check(script_uid not in {0, owner}, f"scripts would run as uid {script_uid}")
    check(stat.S_IMODE(data.stat().st_mode) == 0o700, f"{data} is not mode 0700")


def proc_status(pid: int) -> dict[str, list[str]]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        found[key] = value.split()
    return found


def run_script_job(
    service: Service, job_id: str, job_type: str, path: Path, args: list[str]
) -> dict[str, Any]:
    """Schedule a script two seconds ahead on the scripts surface; its execution."""
    run_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
    status_code, body = http(
        "POST",
        service.url("/api/schedule-job"),
        {
            "job_id": job_id,
            "job_type": job_type,
            "script_path": str(path),
            "run_date": run_at,
            "args": args,
        },
    )
    check(status_code == 200, f"schedule-job answered {status_code}: {body}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status_code, body = http("GET", service.url(f"/api/scheduler/executions?job_id={job_id}"))
        check(status_code == 200, f"executions answered {status_code}: {body}")
        found = body.get("data") or []
        if found and found[0].get("status") not in {"scheduled", "queued", "running"}:
            execution: dict[str, Any] = found[0]
            return execution
        time.sleep(0.5)
    raise Failure(f"the scheduled {job_type} script did not finish within 60 s")


def exercise(service: Service) -> None:
    """Every check on the running service; raises Failure on the first that fails."""
    config = service.config
    data_dir = Path(service.env.get("CRONWELL_DATA_DIR", "/data"))
    script_root = Path(service.env.get("CRONWELL_SCRIPT_ROOTS", "/scripts").split(os.pathsep)[0])
    host_data = service.rootfs / data_dir.relative_to("/")
    before = set(host_data.rglob("*"))
    # the service's user is the data dir's owner; its scripts', CRONWELL_RUN_AS's
    owner = host_data.stat().st_uid
    owner_name = next(
        line.split(":")[0]
        for line in (service.rootfs / "etc/passwd").read_text().splitlines()
        if line.split(":")[2] == str(owner)
    )
    uid, gid, groups, _ = user_ids(service.rootfs, owner_name)
    script_uid, script_gid, _, _ = user_ids(service.rootfs, service.env["CRONWELL_RUN_AS"])

    service.port = free_port()
    check(service.healthcheck() != 0, "the HEALTHCHECK passed with no service running")
    service.start()
    assert service.process is not None
    log(
        f"entrypoint {config.get('Entrypoint')} {config.get('Cmd')} started as uid "
        f"{service.uid} answers on port {service.port}"
    )

    status = proc_status(service.process.pid)
    check(status["Uid"] == [str(uid)] * 4, f"service uids {status['Uid']}, not {owner_name}'s")
    check(status["Gid"] == [str(gid)] * 4, f"service gids {status['Gid']}")
    expected_groups = sorted(str(g) for g in {gid, *groups})
    check(sorted(status["Groups"]) == expected_groups, f"service groups {status['Groups']}")
    check(uid != 0 and gid != 0, "the service runs with uid or gid 0")
    caps = {name: int(status[f"Cap{name}"][0], 16) for name in ("Eff", "Prm", "Bnd")}
    check(caps["Eff"] == caps["Prm"] == SWITCHING_CAPS, f"service capabilities {caps}")
    check(caps["Bnd"] == SWITCHING_CAPS, f"the service's bounding set is {caps['Bnd']:#x}")
    passed_on = {name: status[f"Cap{name}"][0] for name in ("Inh", "Amb")}
    check(all(int(v, 16) == 0 for v in passed_on.values()), f"children would get {passed_on}")
    log(f"service runs as {owner_name} (uid {uid}) with capabilities {caps['Eff']:#x} only")
    root = os.readlink(f"/proc/{service.process.pid}/root")
    check(root == str(service.rootfs.resolve()), f"the service's root is {root}")
    cwd = os.readlink(f"/proc/{service.process.pid}/cwd")
    check(cwd == str(service.rootfs.resolve() / service.workdir.lstrip("/")), f"cwd {cwd}")
    check(service.healthcheck() == 0, "the image's HEALTHCHECK fails on a healthy service")

    made = set(host_data.rglob("*")) - before
    check(bool(made), f"the service wrote nothing to its data dir {data_dir}")
    foreign = [p for p in made if (p.stat().st_uid, p.stat().st_gid) != (uid, gid)]
    check(not foreign, f"data dir files not owned by the service's user: {foreign}")
    check(stat.S_IMODE(host_data.stat().st_mode) == 0o700, f"{data_dir} is not 0700")
    private = [p for p in made if p.name == "secret.key" or p.suffix == ".db"]
    check(len(private) >= 2, f"no database and key in the data dir: {sorted(made)}")
    loose = [p for p in private if stat.S_IMODE(p.stat().st_mode) != 0o600]
    check(not loose, f"data files not mode 0600: {loose}")
    log(
        f"data dir {data_dir} (0700) written by uid {uid}: "
        f"{sorted(str(p.relative_to(host_data)) for p in made)}"
    )

    secrets = [str(Path("/") / p.relative_to(service.rootfs)) for p in private]
    scripts = {
        "bash": (SCRIPT_NAME, SCRIPT, 0o755),
        "python": (PYTHON_SCRIPT_NAME, PYTHON_SCRIPT, 0o644),
    }
    for job_type, (name, text, mode) in scripts.items():
        script = service.rootfs / script_root.relative_to("/") / name
        script.write_text(text)
        script.chmod(mode)
        token = f"t{os.getpid()}x{int(time.time())}{job_type}"
        execution = run_script_job(
            service, f"image_test_{job_type}", job_type, script_root / name, [token, *secrets]
        )
        check(execution["status"] == "completed", f"the {job_type} script's run: {execution}")
        output = execution.get("output") or ""
        said = dict(w.split("=", 1) for w in output.split() if "=" in w)
        check(said.get("token") == token, f"the script's output {output!r} lacks token={token}")
        check(int(said.get("uid", "0")) == script_uid, f"the {job_type} script ran as {output!r}")
        check(int(said.get("gid", "0")) == script_gid, f"the {job_type} script's gid: {output!r}")
        check(int(said.get("capeff", "1"), 16) == 0, f"the {job_type} script holds {output!r}")
        for secret in secrets:
            check(f"DENIED={secret}" in output, f"the {job_type} script read {secret}: {output!r}")
        written = service.rootfs / "tmp" / f"image-test-{token}.txt"
        check(written.is_file(), f"the script did not write {written}")
        check(written.read_text().strip() == token, f"{written} holds {written.read_text()!r}")
        check(written.stat().st_uid == script_uid, f"{written} is owned by {written.stat().st_uid}")
        if job_type == "python":
            returned = execution.get("return_value") or {}
            check(returned.get("token") == token, f"main() returned {returned!r}")
        log(
            f"scheduled {job_type} script {script_root / name} ran as uid {script_uid} with "
            f"no capability and was refused {', '.join(secrets)}"
        )
    check(
        "python scripts run with" in service.log_path.read_text(errors="replace"),
        "the start-up log does not say which interpreter python scripts run with",
    )

    grace = float(service.env.get("CRONWELL_SHUTDOWN_TIMEOUT", "30")) + 15
    code = service.stop(grace)
    check(code == 0, f"the entrypoint exited {code} on {config.get('StopSignal') or 'SIGTERM'}")
    check(processes_in(service.rootfs) == [], "processes outlived the service in the rootfs")
    check("Traceback" not in service.log_path.read_text(errors="replace"), "a traceback logged")
    log(f"{config.get('StopSignal') or 'SIGTERM'}: clean exit 0")
    check(service.healthcheck() != 0, "the HEALTHCHECK passes after the service stopped")


# -- 5. cleanup -------------------------------------------------------------------------


def release(path: Path) -> None:
    """End what runs in path's rootfs (only processes chrooted there), unmount, delete.
    Refuses to delete while anything is still mounted below path."""
    if not path.exists():
        return
    for rootfs in [p for p in path.iterdir() if p.is_dir()] + [path]:
        for pid in processes_in(rootfs):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(processes_in(p) for p in path.glob("*")):
        time.sleep(0.1)
    for point in mounts_under(path):
        if subprocess.run(["umount", str(point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], check=False)
    left = mounts_under(path)
    if left:
        raise Failure(f"still mounted, so {path} is left in place: {left}")
    shutil.rmtree(path)


def remove_leftovers(keep_work: Path | None = None) -> None:
    """Containers, images and folders of earlier runs (only ever ours, by name); called
    under the lock, so no other run is using them."""
    listed = run(["podman", "ps", "-a", "--format", "{{.Names}}"], timeout=60)
    for name in listed.stdout.split():
        if name.startswith(CONTAINER_PREFIX):
            run(["podman", "rm", "-f", name], timeout=120, check=False)
    listed = run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], timeout=60)
    for ref in listed.stdout.split():
        if ref.startswith(IMAGE_REPO + ":"):
            run(["podman", "rmi", "-f", ref], timeout=120, check=False)
    if WORK_PARENT.exists():
        for path in WORK_PARENT.iterdir():
            if path != keep_work:
                release(path)


@contextmanager
def locked() -> Iterator[None]:
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another image test on this machine ({LOCK_FILE})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def interrupted(number: int, _frame: object) -> None:
    log(f"stopped by {signal.Signals(number).name}: cleaning up")
    sys.exit(128 + number)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-base", action="store_true", help="remake the cached base")
    parser.add_argument("--forget-base", action="store_true", help="remove the cached base, exit")
    parser.add_argument("--keep", action="store_true", help="leave the image and folder for a look")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        log("needs root (podman build, chroot, mount); CI runs as root")
        return 1
    for signum in (signal.SIGTERM, signal.SIGHUP):  # so the cleanup below still runs
        signal.signal(signum, interrupted)
    start = time.monotonic()
    WORK_PARENT.mkdir(parents=True, exist_ok=True)
    with locked():
        if args.forget_base:
            if shutil.which("podman"):
                forget_bases(keep=None)
            return 0
        work = Path(tempfile.mkdtemp(prefix="run-", dir=WORK_PARENT))
        run_id = f"{os.getpid()}-{int(time.time())}"
        tag, container = f"{IMAGE_REPO}:{run_id}", f"{CONTAINER_PREFIX}{run_id}"
        service: Service | None = None
        try:
            ensure_tools(work)
            remove_leftovers(keep_work=work)
            base = ensure_base(work, args.fresh_base)
            build_image(work, base, tag)
            config = image_config(tag)
            rootfs = work / "rootfs"
            export_rootfs(tag, container, rootfs)
            run(["podman", "rm", container], timeout=120)
            check_image(rootfs, config)
            mount_runtime(rootfs)
            service = Service(rootfs, config, work)
            exercise(service)
        except (Failure, subprocess.TimeoutExpired) as failure:
            log(f"FAILED: {failure}")
            if service is not None and service.log_path.exists():
                log(f"service log ({service.log_path}):\n{tail(service.log_path, 40)}")
            return 1
        finally:
            if service is not None and service.process and service.process.poll() is None:
                service.process.kill()
                service.process.wait(timeout=30)
            if args.keep:
                log(f"kept {tag} and {work}")
            else:
                run(["podman", "rm", "-f", container], timeout=120, check=False)
                run(["podman", "rmi", "-f", tag], timeout=120, check=False)
                try:
                    release(work)
                except Failure as failure:  # the next run cleans it up; this one still counts
                    log(f"cleanup: {failure}")
    log(f"passed in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
