"""Helpers the API tests share: a real cronwell server on loopback (in-process thread or a
`cronwell serve` child process), settings on a temp folder, real scripts, polling.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests

from api.app import create_app
from api.config import Settings
from api.protocol import GuardedProtocol
from stores.base import Store
from stores.sqlite import SqliteStore

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
#: the console script's code path (`cronwell` = api.cli:main), runnable without installing
CRONWELL = [sys.executable, "-m", "api"]


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings on a temp folder: a SQLite file, a script root, a data dir."""
    scripts = tmp / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "store_url": f"sqlite:///{tmp / 'cronwell.db'}",
        "data_dir": tmp / "data",
        "script_roots": (scripts,),
        "shutdown_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def write_script(root: Path, name: str, text: str, *, executable: bool = True) -> Path:
    path = root / name
    path.write_text(text)
    path.chmod(0o755 if executable else 0o644)
    return path


BASH_ECHO = '#!/bin/bash\necho "Processing with arguments: $@"\nexit 0\n'
PYTHON_MAIN = (
    "def main(*args):\n"
    '    """Main function called by scheduler."""\n'
    '    print(f"Processing with arguments: {args}")\n'
    '    return "Success"\n'
)


MARK = '#!/bin/bash\necho "$1" >> "$2"\n'  # appends its first argument to the file named second


def post_mark_job(
    http: Any, base: str, job_id: str, script: Path, run_date: str, marks: Path
) -> Any:
    """Schedule the MARK script once at `run_date` on the scripts surface, writing
    `job_id` to `marks` when it runs; the response (`http`: requests or a Session)."""
    return http.post(
        f"{base}/api/schedule-job",
        json={
            "job_id": job_id,
            "job_type": "bash",
            "script_path": str(script),
            "run_date": run_date,
            "args": [job_id, str(marks)],
        },
        timeout=60,
    )


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with free_socket() as sock:
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def opened_sqlite(path: Path) -> Iterator[SqliteStore]:
    """A SQLite store on `path`, open for the block (e.g. another node on a server's file)."""
    store = SqliteStore(path)
    store.open()
    try:
        yield store
    finally:
        store.close()


class ThreadServer:
    """`create_app` served by Sanic's own server on a loopback socket, in a thread with
    its own event loop; the app's listeners (engine start/stop) run as in production."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.app = create_app(settings, store=store)
        # Sanic's touch-up rewrites its HTTP class in place for the first app it serves;
        # a second app in the same process must skip it (its signals are the same)
        self.app.config.TOUCHUP = False
        self._sock = free_socket()
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="api-test-server", daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await self.app.create_server(
            sock=self._sock, access_log=False, protocol=GuardedProtocol
        )
        assert server is not None
        await server.startup()
        await server.before_start()
        await server.after_start()
        self._ready.set()
        await self._stop.wait()
        await server.before_stop()
        await server.close()
        # as Sanic's own runner does: let idle keep-alive connections close, then abort
        for connection in list(server.connections):
            connection.close_if_idle()
        for _ in range(50):
            if not server.connections:
                break
            await asyncio.sleep(0.02)
        for connection in list(server.connections):
            connection.abort()
        await server.after_stop()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def start(self) -> ThreadServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("test server did not start within 30 s")
        if self._error is not None:
            raise RuntimeError("test server failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@contextmanager
def running_server(settings: Settings, store: Store | None = None) -> Iterator[ThreadServer]:
    server = ThreadServer(settings, store).start()
    try:
        yield server
    finally:
        server.stop()


class ServeProcess:
    """`cronwell serve` as a real child process (the console script's code path); its
    output goes to a log file, so a chatty server can never block on a full pipe."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {**os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), full_env.get("PYTHONPATH")])
        )
        command = [*CRONWELL, "serve", "--host", "127.0.0.1", "--port", str(self.port), *args]
        with open(log, "ab") as sink:
            self.proc = subprocess.Popen(
                command, env=full_env, cwd=cwd or ROOT, stdout=sink, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 30.0) -> ServeProcess:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cronwell serve exited: {self.output()}")
            try:
                return requests.get(f"{self.url}/api/health", timeout=1).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # not up, or still starting
                return False

        wait_for(healthy, timeout, "cronwell serve to answer /api/health")
        return self

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def finished_execution(
    base: str, job_id: str, timeout: float = 15.0, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Poll the executions endpoint until the job has a terminal execution; return it
    (`headers` carry an API key when the service needs one)."""
    terminal = {"completed", "failed", "timeout", "cancelled", "missed", "skipped", "abandoned"}

    def done() -> dict[str, Any] | None:
        response = requests.get(
            f"{base}/api/scheduler/executions",
            params={"job_id": job_id},
            headers=headers,
            timeout=5,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        for entry in body["data"]:
            if entry["status"] in terminal:
                found: dict[str, Any] = entry
                return found
        return None

    return wait_for(done, timeout, f"an execution of {job_id} to finish")


def serve_module(
    tmp_path_factory: Any, name: str, scripts: dict[str, str] | None = None
) -> Iterator[ThreadServer]:
    """A module's server (for a `scope="module"` fixture): settings on a fresh temp
    folder, with `scripts` (name -> text, executable) in its script root."""
    with running_server(make_settings(tmp_path_factory.mktemp(name))) as live:
        for script, text in (scripts or {}).items():
            write_script(live.app.ctx.settings.script_roots[0], script, text)
        yield live


def new_user(server: ThreadServer, email: str = "ada@example.com") -> str:
    """A user on the scheduler surface; its id."""
    response = requests.post(
        f"{server.url}/api/users/", json={"name": "Ada", "email": email}, timeout=10
    )
    assert response.status_code == 200, response.text
    user_id: str = response.json()["user_id"]
    return user_id
