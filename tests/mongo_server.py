"""A real MongoDB wire-protocol server for the tests: `secantusdb` in its own child
process, or the `mongod` that MONGO_URI names.

secantusdb (GPL-2.0) is a test-only tool: nothing here or in the product imports it.
`SecantusProcess` runs it as `python -c <CHILD>` in a child process on a loopback port,
with its data in a folder the caller gives, and stops it by its pid: SIGTERM (a clean
stop), or SIGKILL for the outage tests, which then start it again on the same port and
the same data. Each test gets a database of its own (`MongoTarget.fresh_db`), dropped
when it is done, so one server serves a whole session.

`python -m tests.mongo_server` starts one in the foreground and prints its URI, for
running the service or `bench.store` by hand against it.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pymongo
import pytest

from engine.ids import new_id

#: The server's own code: imported only inside this child interpreter. It prints
#: `listening <port>` once it accepts connections and stops cleanly on SIGTERM.
#: argv: port, data folder, replica set name ("" = standalone), transaction lifetime in
#: seconds, "1" to run mongod's periodic cleanup of expired transactions (see
#: EXPIRED_TRANSACTIONS), "1" to fsync the journal at every commit (see
#: JOURNALED_COMMITS).
CHILD = """
import faulthandler, signal, sys, threading, time
from secantus import SecantusDBServer
faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1 <pid>: stacks to the log
port, path, replica_set = int(sys.argv[1]), sys.argv[2], sys.argv[3] or None
lifetime, cleanup, sync = float(sys.argv[4]), sys.argv[5] == "1", sys.argv[6] == "1"
server = SecantusDBServer(
    host="127.0.0.1", port=port, storage_path=path, replica_set_name=replica_set,
    durable=True, transaction_lifetime_seconds=lifetime, sync_on_commit=sync,
)
def stop(*_):
    raise SystemExit(0)
signal.signal(signal.SIGTERM, stop)
def sweep():
    while True:
        time.sleep(min(max(lifetime / 2, 1.0), 60.0))
        server.transactions.prune_expired()
if cleanup:
    threading.Thread(target=sweep, name="expired-transactions", daemon=True).start()
server.start()
print("listening", server.port, flush=True)
try:
    while True:
        signal.pause()  # serve until a signal (SIGTERM: `stop` above)
finally:
    server.stop()
"""
#: Deviation (README, "What was and was not tested"): mongod aborts a transaction that
#: outlives transactionLifetimeLimitSeconds from a periodic background cleanup (every
#: limit/2 s, at least once a second and at most a minute apart). secantusdb 0.7.0b3
#: only checks when a transaction command arrives, so the open transaction of a client
#: that was killed mid-write is never aborted while plain writes to its documents retry
#: forever (seen: a cronwell restarted after kill -9 hung in recovery). The servers the
#: tests share therefore run that sweep in the child, with a lifetime of
#: TRANSACTION_LIFETIME s (as `setParameter transactionLifetimeLimitSeconds` would set on
#: mongod); tests/test_mongo_deviations.py shows the server without it.
TRANSACTION_LIFETIME = 2.0
#: Deviation: mongod acknowledges a write with j: true (and, on a replica set, the default
#: w: "majority") only once it is in the on-disk journal. secantusdb 0.7.0b3 honours j:
#: true on a plain write but commits a transaction without syncing its journal, so a
#: transaction it acknowledged can be gone after kill -9 of the server; started with
#: sync_on_commit it syncs every commit. The tests that kill the server start theirs so.
JOURNALED_COMMITS = "sync_on_commit"


def sweep_period(lifetime: float) -> float:
    """How often mongod looks for expired transactions (and the child does)."""
    return min(max(lifetime / 2, 1.0), 60.0)


#: the wheel exists for CPython 3.11 on x86-64 Linux only
SECANTUS_PLATFORM = (
    sys.platform == "linux" and os.uname().machine == "x86_64" and sys.version_info[:2] == (3, 11)
)
START_TIMEOUT = 60.0
DB_PREFIX = "cronwell_test_"


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the test process dies, so an aborted
    run leaves no server behind (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def secantus_version() -> str | None:
    try:
        return importlib.metadata.version("secantusdb")
    except importlib.metadata.PackageNotFoundError:
        return None


class SecantusProcess:
    """One secantusdb server in a child process (`replica_set` None: a standalone
    server, as `mongod` without --replSet; a name: a one-node replica set, which has
    transactions)."""

    def __init__(
        self,
        data: Path,
        *,
        replica_set: str | None = "secantus",
        transaction_lifetime: float = TRANSACTION_LIFETIME,
        cleanup: bool = True,
        sync_on_commit: bool = False,
    ) -> None:
        self.data = data
        self.sync_on_commit = sync_on_commit
        self.replica_set = replica_set
        self.transaction_lifetime = transaction_lifetime
        self.cleanup = cleanup
        self.port = 0  # the first start takes a free port; restarts keep it
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"{data.name}.log"
        self.starts = 0

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not running"
        return self.proc.pid

    def start(self) -> SecantusProcess:
        if secantus_version() is None:
            raise RuntimeError(
                "secantusdb is not installed: `pip install -e '.[test]'` installs it, "
                "or set MONGO_URI to a real mongod"
            )
        self.data.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        marker = f"--- start {self.starts}\n"
        with open(self.log, "a") as heading:
            heading.write(marker)
        sink = open(self.log, "ab")  # noqa: SIM115 (the child owns it from here on)
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(self.port),
                    str(self.data),
                    self.replica_set or "",
                    str(self.transaction_lifetime),
                    "1" if self.cleanup else "0",
                    "1" if self.sync_on_commit else "0",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if not k.startswith("SECANTUS_")},
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - a test helper, started before its threads
            )
        finally:
            sink.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            text = self.log.read_text(errors="replace").rpartition(marker)[2]
            for line in text.splitlines():
                if line.startswith("listening "):
                    self.port = int(line.split()[1])
                    self._wait_ping(deadline)
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"secantusdb exited with {self.proc.returncode}:\n{text}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"secantusdb did not start in {START_TIMEOUT} s:\n{text}")
            time.sleep(0.05)

    def _wait_ping(self, deadline: float) -> None:
        client: pymongo.MongoClient[dict[str, Any]]
        with pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=1000) as client:
            while True:
                try:
                    client.admin.command("ping")
                    return
                except pymongo.errors.PyMongoError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

    def _signal(self, signum: int, timeout: float) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10)
        self.proc = None
        return code

    def stop(self) -> int | None:
        """SIGTERM to its pid: the server closes its storage and exits."""
        return self._signal(signal.SIGTERM, 20)

    def kill(self) -> None:
        """SIGKILL to its pid: the server is gone at once, as in a crash."""
        self._signal(signal.SIGKILL, 10)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets open but answers nothing."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


@dataclass
class MongoTarget:
    """Where the Mongo cases run: a URI, what is behind it, and a client to clean up."""

    uri: str
    label: str
    process: SecantusProcess | None = None
    _client: Any = field(default=None, repr=False)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = pymongo.MongoClient(
                self.uri, serverSelectionTimeoutMS=10_000, socketTimeoutMS=60_000
            )
        return self._client

    def fresh_db(self) -> str:
        """A database name no test has used."""
        return f"{DB_PREFIX}{new_id()}"

    def drop(self, name: str) -> None:
        """Drop a test's database (only ever one of ours)."""
        assert name.startswith(DB_PREFIX), name
        self.client.drop_database(name)

    @contextmanager
    def database(self) -> Iterator[str]:
        name = self.fresh_db()
        try:
            yield name
        finally:
            self.drop(name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def secantus_target(folder: Path, *, replica_set: str | None = "secantus") -> MongoTarget:
    """Start a secantusdb server with its data under `folder`."""
    process = SecantusProcess(folder / "data", replica_set=replica_set).start()
    topology = f"replica set {replica_set!r}" if replica_set else "standalone"
    return MongoTarget(process.uri, f"secantusdb {secantus_version()} ({topology})", process)


def uri_target(uri: str) -> MongoTarget:
    return MongoTarget(uri, "the MongoDB server at MONGO_URI")


#: the stores the service-level tests run on, as pytest params (`store_for` reads them)
SERVICE_STORES = ["sqlite", pytest.param("mongo", marks=pytest.mark.mongo_real)]


class ServiceStore(NamedTuple):
    """What `cronwell serve` is given for one store: `--store URL` and environment."""

    url: str
    env: dict[str, str]
    #: the Mongo server behind it (None for SQLite)
    mongo: MongoTarget | None = None

    @property
    def db_name(self) -> str:
        return self.env.get("DB_NAME", "cronwell")

    def expiry_wait(self) -> float:
        """Seconds until a transaction left open by a killed client is surely aborted
        (0 but on secantusdb: see EXPIRED_TRANSACTIONS)."""
        process = self.mongo.process if self.mongo else None
        if process is None:
            return 0.0
        return process.transaction_lifetime + sweep_period(process.transaction_lifetime) + 1.0


@contextmanager
def store_for(request: pytest.FixtureRequest, tmp: Path) -> Iterator[ServiceStore]:
    """`cronwell serve`'s store named by `request.param`: a SQLite file in `tmp`, or a
    fresh database (DB_NAME) on the session's fixture of that name, dropped afterwards."""
    if request.param == "sqlite":
        yield ServiceStore(f"sqlite:///{tmp / 'cronwell.db'}", {})
        return
    target: MongoTarget = request.getfixturevalue(request.param)
    with target.database() as name:
        yield ServiceStore(target.uri, {"DB_NAME": name}, target)


def main() -> int:
    import tempfile

    standalone = "--standalone" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="secantusdb-") as tmp:
        target = secantus_target(Path(tmp), replica_set=None if standalone else "secantus")
        assert target.process is not None
        print(f"{target.label} at {target.uri} (pid {target.process.pid}); Ctrl-C stops it")
        try:
            while True:
                signal.pause()  # until Ctrl-C
        except KeyboardInterrupt:
            pass
        finally:
            target.close()
            target.process.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
