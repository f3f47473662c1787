"""Start the two servers `bench.api` measures, each as its own process on a free
loopback port, and stop them again.

cronwell: `cronwell serve` (the console script beside this interpreter) on a SQLite file.
The peer: `python -m bench.peers.flask_apscheduler` on its own SQLite file. Each gets a
clean environment (no CRONWELL_* from the caller, so no API keys or other stores) and
runs in a temp folder, so no `.env` is picked up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from bench.common import free_port
from bench.http_load import Request, call, post_json

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    host: str
    port: int
    #: headers every request to it carries (an API key for a closed cronwell)
    headers: tuple[tuple[str, str], ...] = ()

    def signed(self, request: Request) -> Request:
        """`request` with this server's headers."""
        return replace(request, headers=self.headers) if self.headers else request


class ServerFailed(RuntimeError):
    """A server exited or never answered its health check."""


def repo_pythonpath() -> str:
    """PYTHONPATH that finds this checkout's packages from any working folder (the
    project need not be pip-installed to be benchmarked)."""
    repo = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH", "")]))


def cronwell_command() -> list[str]:
    """`cronwell` as installed beside this interpreter, or the same entry point run by
    this interpreter when the project is not installed."""
    script = Path(sys.executable).with_name("cronwell")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRONWELL_") and k not in ("MONGO_URI", "DB_NAME")
    }
    env.update(extra)
    return env


def _wait_healthy(process: subprocess.Popen[bytes], server: Server, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(
                f"{server.name} exited {process.returncode}: {log.read_text()[-800:]}"
            )
        try:
            status, _ = call(server.host, server.port, Request("GET", "/api/health"))
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise ServerFailed(
        f"{server.name} not healthy after {STARTUP_TIMEOUT:.0f} s: {log.read_text()[-800:]}"
    )


@contextmanager
def _serving(
    name: str, argv: list[str], workdir: Path, env: dict[str, str], port: int
) -> Iterator[Server]:
    server = Server(name, "127.0.0.1", port)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(process, server, log)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def cronwell_server(
    workdir: Path,
    script_root: Path,
    pool_size: int,
    pythonpath: str | None = None,
    **settings: str,
) -> Iterator[Server]:
    """`settings` are extra CRONWELL_* variables for it; `pythonpath` serves another
    checkout's code (this one's by default)."""
    with cronwell_node(
        workdir,
        script_root,
        pool_size,
        f"sqlite:///{workdir / 'cronwell.db'}",
        "cronwell",
        pythonpath=pythonpath,
        **settings,
    ) as server:
        yield server


@contextmanager
def cronwell_node(
    workdir: Path,
    script_root: Path,
    pool_size: int,
    store_url: str,
    node_id: str,
    db_name: str = "cronwell",
    pythonpath: str | None = None,
    **settings: str,
) -> Iterator[Server]:
    """One `cronwell serve` named `node_id` on `store_url` (several may share it;
    `db_name` is the MongoDB database when the URL is a mongodb:// one); `settings`
    are extra CRONWELL_* variables for it."""
    port = free_port()
    argv = [
        *cronwell_command(),
        "serve",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--store", store_url,
        "--script-root", str(script_root),
        "--pool-size", str(pool_size),
        "--node-id", node_id,
    ]  # fmt: skip
    env = clean_env(
        CRONWELL_DATA_DIR=str(workdir / "data"),
        PYTHONPATH=repo_pythonpath() if pythonpath is None else pythonpath,
        DB_NAME=db_name,
        **settings,
    )
    with _serving(node_id, argv, workdir, env, port) as server:
        yield server


@contextmanager
def keyed_cronwell_server(
    workdir: Path, script_root: Path, pool_size: int, name: str = "cronwell-key", **settings: str
) -> Iterator[Server]:
    """`cronwell serve` closed by a stored key: an admin user and their key are made
    through the API (open until then), and every request then carries the key as
    `Authorization: Bearer`, so each one pays the full check (hash, key lookup, user
    lookup) the way a real client's does."""
    with cronwell_server(workdir, script_root, pool_size, **settings) as server:
        status, user = call(
            server.host,
            server.port,
            post_json(
                "/api/users/", {"name": "Bench", "email": "bench@example.com", "role": "admin"}
            ),
        )
        if status != 200:
            raise ServerFailed(f"cronwell: creating the bench user failed: {status} {user}")
        status, made = call(
            server.host, server.port, post_json(f"/api/users/{user['user_id']}/keys", {})
        )
        if status != 200:
            raise ServerFailed(f"cronwell: creating the bench key failed: {status} {made}")
        headers = (("Authorization", f"Bearer {made['api_key']}"),)
        yield replace(server, name=name, headers=headers)


@contextmanager
def peer_server(workdir: Path, pool_size: int) -> Iterator[Server]:
    port = free_port()
    argv = [
        sys.executable, "-m", "bench.peers.flask_apscheduler",
        "--port", str(port),
        "--db", str(workdir / "peer.db"),
        "--pool-size", str(pool_size),
    ]  # fmt: skip
    env = clean_env(PYTHONPATH=repo_pythonpath())
    with _serving("flask-apscheduler", argv, workdir, env, port) as server:
        yield server
