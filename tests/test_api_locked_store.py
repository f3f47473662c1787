"""A locked store never freezes the server (api/storecalls.py), with real processes:
another process holds the SQLite write lock (BEGIN EXCLUSIVE) for several seconds while
clients keep asking for health and keep writing users and servers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from api.storecalls import RETRY_AFTER, STORE_WAIT
from tests.api_support import ThreadServer, make_settings

pytestmark = pytest.mark.slow

LOCK_SECONDS = 5.0
#: holds the write lock on the file in argv[1] for argv[2] seconds, saying when it has it
LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


def test_a_locked_sqlite_store_answers_503_fast_and_health_keeps_answering(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    server = ThreadServer(settings).start()
    base = server.url
    http = requests.Session()
    try:
        user = http.post(
            f"{base}/api/users/", json={"name": "Ada", "email": "ada@example.com"}, timeout=10
        )
        assert user.status_code == 200, user.text
        user_id = user.json()["user_id"]

        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(tmp_path / "cronwell.db"), str(LOCK_SECONDS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        locked_until = time.monotonic() + LOCK_SECONDS

        health: list[tuple[float, int, str]] = []
        stop = threading.Event()

        def ask_health() -> None:
            with requests.Session() as probe:
                while not stop.is_set():
                    began = time.monotonic()
                    response = probe.get(f"{base}/api/health", timeout=5)
                    store = response.json().get("store", "")
                    health.append((time.monotonic() - began, response.status_code, store))
                    time.sleep(0.1)

        asker = threading.Thread(target=ask_health)
        asker.start()
        accepted: list[str] = []  # emails of users, names of servers
        refused: list[tuple[float, requests.Response]] = []
        number = 0
        while time.monotonic() < locked_until - 0.3:
            number += 1
            for path, body, name in (
                ("/api/users/", {"name": f"U{number}", "email": f"u{number}@example.com"}, "email"),
                (
                    "/api/servers/create",
                    {"user_id": user_id, "name": f"s{number}", "hostname": "h", "port": 22},
                    "name",
                ),
            ):
                began = time.monotonic()
                response = http.post(f"{base}{path}", json=body, timeout=10)
                took = time.monotonic() - began
                if response.status_code == 200:
                    accepted.append(str(body[name]))
                else:
                    refused.append((took, response))
        assert locker.wait(LOCK_SECONDS + 10) == 0
        time.sleep(0.5)
        stop.set()
        asker.join(10)

        # writes were refused quickly, in the scheduler surface's envelope
        assert refused, "no write was refused while the store was locked"
        for took, response in refused:
            assert response.status_code == 503
            assert took < STORE_WAIT + 1.0, f"a refusal took {took:.2f} s"
            assert response.headers["Retry-After"] == str(RETRY_AFTER)
            assert list(response.json()) == ["detail"]
            assert response.json()["detail"].startswith("Store unavailable: ")
        # health answered within a second throughout, and said the store was degraded
        assert len(health) >= 5
        assert max(took for took, _, _ in health) < 1.0
        assert all(status == 200 for _, status, _ in health)
        assert "degraded" in {store for _, _, store in health}
        assert health[-1][2] == "ok"
        # every accepted write is there, and the store takes writes again
        after = http.post(
            f"{base}/api/users/", json={"name": "Late", "email": "late@example.com"}, timeout=10
        )
        assert after.status_code == 200, after.text
        users = http.get(f"{base}/api/users/", timeout=10).json()["data"]
        servers = http.get(f"{base}/api/servers/", timeout=10).json()["data"]
        stored = {u["email"] for u in users} | {s["name"] for s in servers}
        assert set(accepted) | {"ada@example.com", "late@example.com"} <= stored
        print(
            f"\nlocked {LOCK_SECONDS:g} s: {len(refused)} write(s) refused with 503, "
            f"{len(accepted)} accepted; health p100 {max(t for t, _, _ in health) * 1000:.0f} ms "
            f"over {len(health)} checks"
        )
    finally:
        http.close()
        server.stop()
