"""Authentication beyond the permission table: open mode and its bind guard, the
`cronwell keys create` bootstrap, malformed keys, the failure guard (429), what a failed
attempt logs, and the audit trail."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from api.audit import AuditTrail
from api.auth import OPEN_RECHECK, FailureGuard
from api.keys import hash_key
from engine.errors import NotAuthenticated
from stores.memory import MemoryStore
from stores.records import AuditEntry
from stores.sqlite import SqliteStore
from tests.api_support import CRONWELL, ROOT, make_settings, running_server, wait_for

KEY = re.compile(r"^cw_[A-Za-z0-9_-]{43}$")


def cronwell(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The console script's code path with a clean CRONWELL_ environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRONWELL_")}
    done = subprocess.run(  # noqa: PLW1510 - the exit code is what is checked
        [*CRONWELL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    return done.returncode, done.stdout, done.stderr


def _store_env(tmp_path: Path) -> dict[str, str]:
    return {"CRONWELL_STORE": f"sqlite:///{tmp_path / 'cronwell.db'}"}


# -- open mode and the bootstrap ------------------------------------------------------------
def test_open_mode_refuses_a_non_loopback_address_unless_allowed(tmp_path: Path) -> None:
    env = _store_env(tmp_path)
    code, stdout, stderr = cronwell(tmp_path, "serve", "--check", "--host", "0.0.0.0", env=env)
    assert (code, stdout) == (1, "")
    assert stderr.count("\n") == 1 and stderr.startswith("cronwell: refusing to serve 0.0.0.0")
    assert "--allow-open" in stderr and "cronwell keys create" in stderr
    allowed = cronwell(tmp_path, "serve", "--check", "--host", "0.0.0.0", "--allow-open", env=env)
    assert allowed[0] == 0 and "open (no API key yet)" in allowed[1]
    by_env = cronwell(
        tmp_path, "serve", "--check", "--host", "0.0.0.0", env={**env, "CRONWELL_API_KEYS": "k"}
    )
    assert by_env[0] == 0 and "keys required" in by_env[1]
    for loopback in ("127.0.0.1", "::1", "localhost"):
        assert cronwell(tmp_path, "serve", "--check", "--host", loopback, env=env)[0] == 0


def test_keys_create_prints_only_the_key_and_closes_the_service(tmp_path: Path) -> None:
    env = _store_env(tmp_path)
    code, stdout, stderr = cronwell(
        tmp_path, "keys", "create", "--email", "Root@Example.com", "--role", "admin", env=env
    )
    assert code == 0, stderr
    key = stdout.strip()
    assert stdout == key + "\n" and KEY.match(key)
    assert key not in stderr
    store = SqliteStore(tmp_path / "cronwell.db")
    store.open()
    try:
        (user,) = store.list_users()
        assert (user.email, user.role, user.name) == (
            "Root@Example.com",
            "admin",
            "Root@Example.com",
        )
        (record,) = store.list_api_keys(user.id)
        assert record.key_hash == hash_key(key) and key not in str(record.to_record())
    finally:
        store.close()
    # the same user again (email case-insensitive): a second key, no second user
    again = cronwell(tmp_path, "keys", "create", "--email", "root@example.com", env=env)
    assert again[0] == 0 and again[1].strip() != key
    # now closed: a non-loopback bind is fine, and the check says keys are required
    closed = cronwell(tmp_path, "serve", "--check", "--host", "0.0.0.0", env=env)
    assert closed[0] == 0 and "keys required" in closed[1]
    bad = cronwell(tmp_path, "keys", "create", "--email", "not-an-email", env=env)
    assert bad[0] == 1 and bad[1] == "" and bad[2].count("\n") == 1


def test_a_key_made_while_the_service_runs_closes_it_within_a_second(tmp_path: Path) -> None:
    """Outside this process's API (the CLI, another node) a new key is seen at the next
    open-mode recheck (OPEN_RECHECK, 1 s): an open service does not ask the store on
    every request, so a locked store cannot stall the event loop."""
    settings = make_settings(tmp_path)
    with running_server(settings) as live:
        assert requests.get(f"{live.url}/api/jobs", timeout=5).status_code == 200  # open
        code, stdout, stderr = cronwell(
            tmp_path,
            "keys",
            "create",
            "--email",
            "ops@example.com",
            "--role",
            "admin",
            env={"CRONWELL_STORE": settings.store_url},
        )
        assert code == 0, stderr
        made = time.monotonic()

        def refusal() -> list[requests.Response]:  # a Response is falsy when not ok
            answer = requests.get(f"{live.url}/api/jobs", timeout=5)
            return [answer] if answer.status_code == 401 else []

        (refused,) = wait_for(refusal, 3, "the service to close")
        assert time.monotonic() - made < OPEN_RECHECK + 1.0
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.json() == {
            "error": "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        }
        ok = requests.get(
            f"{live.url}/api/jobs", headers={"Authorization": f"Bearer {stdout.strip()}"}, timeout=5
        )
        assert ok.status_code == 200
        assert requests.get(f"{live.url}/api/health", timeout=5).status_code == 200


# -- malformed keys, logging, the failure guard --------------------------------------------
MALFORMED: list[dict[str, str]] = [
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "bearer two words"},
    {"Authorization": "Bearer " + "x" * 5000},
    {"Authorization": ""},
    {"X-API-Key": ""},
    {"X-API-Key": "cw_\u00e9\u00e8"},
    {"X-API-Key": "cw_short"},
    {"X-API-Key": "cw_" + "A" * 43},
]


@pytest.fixture()
def closed(tmp_path: Path) -> Any:
    with running_server(make_settings(tmp_path, api_keys=("env-admin-key",))) as live:
        yield live


@pytest.mark.parametrize("headers", MALFORMED, ids=range(len(MALFORMED)))
@pytest.mark.parametrize("path", ["/api/jobs", "/api/scheduler/jobs"])
def test_a_malformed_header_or_key_is_401_never_500(
    closed: Any, headers: dict[str, str], path: str
) -> None:
    encoded = {k: v.encode("utf-8") for k, v in headers.items()}
    response = requests.get(closed.url + path, headers=encoded, timeout=10)  # type: ignore[arg-type]
    assert response.status_code == 401, response.text
    assert list(response.json()) == ["detail" if "scheduler" in path else "error"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_failed_authentication_logs_address_and_prefix_never_the_key(
    closed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "cw_ThisIsAWrongButSecretLookingKeyOf43Chars_xyz"
    with caplog.at_level(logging.WARNING, logger="cronwell.auth"):
        response = requests.get(f"{closed.url}/api/jobs", headers={"X-API-Key": secret}, timeout=5)
        assert response.status_code == 401
        wait_for(lambda: caplog.records, 5, "the failure to be logged")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "127.0.0.1" in text and secret[:8] in text
    assert secret not in text and secret[8:] not in text


def test_the_env_key_works_as_bearer_and_as_x_api_key(closed: Any) -> None:
    for headers in ({"Authorization": "Bearer env-admin-key"}, {"X-API-Key": "env-admin-key"}):
        assert (
            requests.get(f"{closed.url}/api/audit", headers=headers, timeout=5).status_code == 200
        )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_more_than_ten_failures_a_minute_answer_429_until_the_minute_passes(closed: Any) -> None:
    clock = FakeClock()
    closed.app.ctx.authenticator.guard = FailureGuard(limit=10, window=60, clock=clock)
    url = f"{closed.url}/api/scheduler/jobs"
    wrong = {"X-API-Key": "wrong-key"}
    for attempt in range(10):
        assert requests.get(url, headers=wrong, timeout=5).status_code == 401, attempt
        clock.now += 1
    # an 11th attempt within the minute is refused before any key is checked, good or not
    for headers in (wrong, {"X-API-Key": "env-admin-key"}):
        blocked = requests.get(url, headers=headers, timeout=5)
        assert blocked.status_code == 429
        assert blocked.headers["Retry-After"] == "50"  # the first failure was 10 s ago
        assert list(blocked.json()) == ["detail"]
    # requests without any key are not guesses and do not count
    clock.now += 49.5
    assert requests.get(url, headers=wrong, timeout=5).headers["Retry-After"] == "1"
    clock.now += 0.5  # the first failure is now a minute old
    assert requests.get(url, headers={"X-API-Key": "env-admin-key"}, timeout=5).status_code == 200
    assert requests.get(url, headers=wrong, timeout=5).status_code == 401  # room for one
    assert requests.get(url, headers=wrong, timeout=5).status_code == 429
    clock.now += 61
    assert requests.get(url, headers={"X-API-Key": "env-admin-key"}, timeout=5).status_code == 200
    health = requests.get(f"{closed.url}/api/health", timeout=5)
    assert health.status_code == 200


def test_the_guard_is_per_address_and_bounded() -> None:
    clock = FakeClock()
    guard = FailureGuard(limit=2, window=60, clock=clock)
    guard.failed("a")
    guard.failed("a")
    assert guard.retry_after("a") == 60 and guard.retry_after("b") is None
    clock.now += 60
    assert guard.retry_after("a") is None


# -- the audit trail -----------------------------------------------------------------------
def test_every_change_is_audited_and_only_an_admin_reads_the_trail(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys=("env-admin-key",))
    admin = {"X-API-Key": "env-admin-key"}
    with running_server(settings) as live:
        url = live.url
        made = requests.post(
            f"{url}/api/users/", json={"name": "A", "email": "a@example.com"}, headers=admin
        )
        user_id = made.json()["user_id"]
        key = requests.post(f"{url}/api/users/{user_id}/keys", json={}, headers=admin).json()
        user = {"Authorization": f"Bearer {key['api_key']}"}
        job = requests.post(
            f"{url}/api/scheduler/jobs",
            json={
                "user_id": user_id,
                "job_class_string": "jobs.echo.EchoJob",
                "name": "mine",
                "minute": "0",
                "hour": "1",
            },
            headers=user,
        ).json()
        refused = requests.delete(f"{url}/api/users/{user_id}", headers=user)
        assert refused.status_code == 403
        assert requests.get(f"{url}/api/scheduler/jobs", headers=user).status_code == 200
        unauthenticated = requests.delete(f"{url}/api/users/{user_id}")
        assert unauthenticated.status_code == 401
        assert requests.get(f"{url}/api/audit", headers=user).status_code == 403

        trail = requests.get(f"{url}/api/audit", headers=admin)
        assert trail.status_code == 200
        body = trail.json()
        assert (body["status"], body["total"]) == ("success", 4)
        entries = body["data"]
        assert [(e["method"], e["status_code"]) for e in entries] == [
            ("DELETE", 403),
            ("POST", 200),
            ("POST", 200),
            ("POST", 200),
        ]  # newest first; reads and the 401 are not recorded
        delete, create_job, create_key, create_user = entries
        assert delete["user_id"] == user_id and delete["key_id"] == key["key_id"]
        assert delete["resource_id"] == user_id and delete["path"] == f"/api/users/{user_id}"
        assert create_job["resource_id"] == job["job_id"] and create_job["user_id"] == user_id
        assert create_key["resource_id"] == user_id and create_key["key_id"] == "env:1"
        assert create_user["resource_id"] == user_id and create_user["user_id"] is None
        assert all(e["client"] == "127.0.0.1" and e["time"].endswith("+00:00") for e in entries)
        assert key["api_key"] not in trail.text

        mine = requests.get(f"{url}/api/audit", params={"user_id": user_id}, headers=admin).json()
        assert mine["total"] == 2
        paged = requests.get(f"{url}/api/audit", params={"limit": 1, "offset": 1}, headers=admin)
        assert [e["_id"] for e in paged.json()["data"]] == [create_job["_id"]]
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (
            requests.get(f"{url}/api/audit", params={"since": later}, headers=admin).json()["data"]
            == []
        )
        bad = requests.get(f"{url}/api/audit", params={"since": "yesterday"}, headers=admin)
        assert bad.status_code == 400 and list(bad.json()) == ["detail"]


def test_audit_entries_older_than_the_setting_are_pruned() -> None:
    store = MemoryStore()
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for days in (1, 89, 91, 400):
        store.add_audit_entries(
            [
                AuditEntry(
                    id=f"e{days}",
                    created_at=now - timedelta(days=days),
                    method="POST",
                    path="/",
                    status=200,
                )
            ]
        )
    trail = AuditTrail(store, lambda: now, days=90)
    assert trail.prune() == 2
    assert [e.id for e in store.list_audit_entries()] == ["e1", "e89"]
    trail.start()
    trail.add(AuditEntry(id="new", created_at=now, method="PUT", path="/x", status=200))
    trail.flush()
    trail.stop()
    assert store.list_audit_entries(limit=1)[0].id == "new"


# -- the key cache ----------------------------------------------------------------
def test_with_a_key_cache_api_changes_still_hold_on_the_next_request(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys=("env-admin-key",), key_cache_seconds=60.0)
    admin = {"X-API-Key": "env-admin-key"}
    with running_server(settings) as live:
        url = live.url
        clock = FakeClock()
        authenticator = live.app.ctx.authenticator
        authenticator._monotonic = clock
        user_id = requests.post(
            f"{url}/api/users/", json={"name": "C", "email": "c@example.com"}, headers=admin
        ).json()["user_id"]

        def new_key() -> tuple[str, dict[str, str]]:
            made = requests.post(f"{url}/api/users/{user_id}/keys", json={}, headers=admin).json()
            return made["key_id"], {"Authorization": f"Bearer {made['api_key']}"}

        key_id, user = new_key()
        calls = {"n": 0}
        real = live.app.ctx.store.find_key_owner

        def counting(digest: str) -> Any:
            calls["n"] += 1
            return real(digest)

        live.app.ctx.store.find_key_owner = counting
        for _ in range(5):
            assert requests.get(f"{url}/api/scheduler/jobs", headers=user).status_code == 200
        assert calls["n"] == 1  # one store read, then the cache
        # a role change through the API holds on the next request
        assert requests.get(f"{url}/api/audit", headers=user).status_code == 403
        requests.put(f"{url}/api/users/{user_id}", json={"role": "admin"}, headers=admin)
        assert requests.get(f"{url}/api/audit", headers=user).status_code == 200
        # so does a revocation through the API
        requests.delete(f"{url}/api/users/{user_id}/keys/{key_id}", headers=admin)
        assert requests.get(f"{url}/api/scheduler/jobs", headers=user).status_code == 401
        # one revoked elsewhere (another node, on the shared store) holds once the entry expires
        key_id, user = new_key()
        assert requests.get(f"{url}/api/scheduler/jobs", headers=user).status_code == 200
        live.app.ctx.store.revoke_api_key(key_id, datetime.now(UTC))
        assert requests.get(f"{url}/api/scheduler/jobs", headers=user).status_code == 200
        clock.now += 60
        assert requests.get(f"{url}/api/scheduler/jobs", headers=user).status_code == 401
        # deleting the user drops their cached keys too
        key_id, user = new_key()
        assert requests.get(f"{url}/api/scheduler/jobs", headers=user).status_code == 200
        assert requests.delete(f"{url}/api/users/{user_id}", headers=admin).status_code == 200
        assert requests.get(f"{url}/api/scheduler/jobs", headers=user).status_code == 401


def test_the_key_cache_setting_is_checked() -> None:
    from api.config import load_settings
    from engine.errors import InvalidInput

    assert (
        load_settings({"CRONWELL_KEY_CACHE_SECONDS": "1.5"}, dotenv=None).key_cache_seconds == 1.5
    )
    assert load_settings({}, dotenv=None).key_cache_seconds == 1.0
    assert load_settings({"CRONWELL_KEY_CACHE_SECONDS": "0"}, dotenv=None).key_cache_seconds == 0
    for bad in ("-1", "soon", "7200"):
        with pytest.raises(InvalidInput):
            load_settings({"CRONWELL_KEY_CACHE_SECONDS": bad}, dotenv=None)


def _remembering(cache_seconds: float = 1.0) -> tuple[Any, Any, str, Any]:
    """An Authenticator on a memory store holding one user's key, on fake clocks."""
    from api.auth import Authenticator
    from api.keys import make_key
    from stores.records import User

    store = MemoryStore()
    store.open()
    store.add_user(User(id="u" * 24, name="U", email="u@example.com", role="user"))
    wall = datetime(2030, 1, 1, tzinfo=UTC)
    clock = FakeClock()
    times = {"now": wall}
    record, key = make_key(store, "u" * 24, "k", wall)
    authenticator = Authenticator(
        store,
        ("env-admin-key",),
        lambda: times["now"],
        FailureGuard(clock=clock),
        cache_seconds=cache_seconds,
        monotonic=clock,
    )
    return authenticator, record, key, (clock, times)


def test_a_remembered_key_needs_no_store_until_its_entry_is_due() -> None:
    authenticator, record, key, (clock, times) = _remembering()
    headers = {"authorization": f"Bearer {key}"}
    assert (
        authenticator.remembered(headers, lambda: "c") is None
    )  # never checked: the store decides
    first = authenticator.authenticate(headers, "c")
    assert (first.user_id, first.key_id) == ("u" * 24, record.id)
    assert authenticator.remembered(headers, lambda: "c") == first
    assert authenticator.remembered({"X-API-Key": key}, lambda: "c") == first
    # a CRONWELL_API_KEYS key needs no store at all; a wrong or garbled one goes to the store path
    assert authenticator.remembered({"X-API-Key": "env-admin-key"}, lambda: "c").admin
    for wrong in ({"X-API-Key": key + "x"}, {"authorization": "Basic abc"}, {}):
        assert authenticator.remembered(wrong, lambda: "c") is None
    # re-checked against the store once the entry is cache_seconds old
    clock.now += 1.0
    assert authenticator.remembered(headers, lambda: "c") is None
    assert authenticator.authenticate(headers, "c") == first
    assert authenticator.remembered(headers, lambda: "c") == first
    # last_used_at falls due a minute after it was written: 59.5 s on, the key is checked
    # again (its entry expired) and may be let in unchecked for the half second left
    times["now"] += timedelta(seconds=59.5)
    clock.now += 59.5
    assert authenticator.remembered(headers, lambda: "c") is None
    assert authenticator.authenticate(headers, "c") == first
    assert authenticator.remembered(headers, lambda: "c") == first
    times["now"] += timedelta(seconds=0.6)
    clock.now += 0.6
    assert authenticator.remembered(headers, lambda: "c") is None
    authenticator.authenticate(headers, "c")
    assert authenticator.store.get_api_key(record.id).last_used_at == times["now"]
    assert authenticator.remembered(headers, lambda: "c") == first


def test_a_forgotten_key_is_checked_again_and_an_overlapping_check_is_not_kept() -> None:
    authenticator, record, key, (_, times) = _remembering()
    headers = {"authorization": f"Bearer {key}"}
    authenticator.authenticate(headers, "c")
    assert authenticator.remembered(headers, lambda: "c") is not None  # a repeat now
    authenticator.store.revoke_api_key(record.id, times["now"])
    authenticator.forget(key_id=record.id)  # what revoking through the API does
    assert authenticator.remembered(headers, lambda: "c") is None
    with pytest.raises(NotAuthenticated):
        authenticator.authenticate(headers, "c")
    # a check whose store read a forget() overtook (a revocation racing it) keeps nothing
    other, made, other_key, _ = _remembering()
    real = other.store.find_key_owner

    def overtaken(digest: str) -> Any:
        found = real(digest)
        other.forget(key_id=made.id)
        return found

    other.store.find_key_owner = overtaken
    other.authenticate({"X-API-Key": other_key}, "c")
    assert other.remembered({"X-API-Key": other_key}, lambda: "c") is None


def test_no_key_cache_means_every_check_reads_the_store() -> None:
    authenticator, _, key, _ = _remembering(cache_seconds=0)
    headers = {"authorization": f"Bearer {key}"}
    authenticator.authenticate(headers, "c")
    assert authenticator.remembered(headers, lambda: "c") is None
    assert authenticator.remembered({"X-API-Key": "env-admin-key"}, lambda: "c").admin


def test_an_address_over_the_failure_limit_is_not_let_through_on_the_loop() -> None:
    authenticator, _, key, _ = _remembering()
    headers = {"authorization": f"Bearer {key}"}
    authenticator.authenticate(headers, "c")
    assert authenticator.remembered(headers, lambda: "c") is not None  # a repeat now
    for _ in range(10):
        with pytest.raises(NotAuthenticated):
            authenticator.authenticate({"X-API-Key": "cw_wrong"}, "c")
    assert authenticator.remembered(headers, lambda: "c") is None
    assert authenticator.remembered(headers, lambda: "another address") is not None


def test_a_repeated_key_is_let_in_without_looking_at_the_client_until_a_failure() -> None:
    """The client's address costs a parse of forwarding headers: asked for only while
    the failure guard holds a failure."""
    authenticator, _, key, (clock, _) = _remembering()
    headers = {"authorization": f"Bearer {key}"}
    authenticator.authenticate(headers, "c")
    asked: list[str] = []

    def client() -> str:
        asked.append("c")
        return "c"

    assert authenticator.remembered(headers, client) is not None
    assert authenticator.remembered(headers, client) is not None
    assert asked == []
    with pytest.raises(NotAuthenticated):
        authenticator.authenticate({"X-API-Key": "cw_wrong"}, "elsewhere")
    assert authenticator.remembered(headers, client) is not None
    assert asked == ["c"]
    clock.now += 0.5  # still within the key's cache entry: the text sent again is let in
    assert authenticator.remembered({"authorization": f"bearer {key}"}, client) is not None
    assert authenticator.remembered({"authorization": f"Bearer {key}x"}, client) is None


def test_a_repeat_is_not_kept_when_a_forget_overtook_its_check() -> None:
    """A revocation made on another thread while the event loop checked the key: the
    request in flight may pass, the next one must not find it remembered."""
    authenticator, record, key, (_, times) = _remembering()
    headers = {"authorization": f"Bearer {key}"}
    authenticator.authenticate(headers, "c")
    real = authenticator._checked

    def overtaken(sent: Any) -> Any:
        found = real(sent)
        authenticator.store.revoke_api_key(record.id, times["now"])
        authenticator.forget(key_id=record.id)
        return found

    authenticator._checked = overtaken
    assert authenticator.remembered(headers, lambda: "c") is not None
    authenticator._checked = real
    assert authenticator.remembered(headers, lambda: "c") is None
    with pytest.raises(NotAuthenticated):
        authenticator.authenticate(headers, "c")
