"""Users and servers on the scheduler surface, over a real server and SQLite file."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from engine.ids import is_object_id
from tests.api_support import ThreadServer, make_settings, running_server

MISSING_ID = "0123456789abcdef01234567"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("users_api")
    with running_server(make_settings(tmp)) as live:
        yield live


def call(server: ThreadServer, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, server.url + path, json=body, timeout=10)


def new_user(server: ThreadServer, email: str, **extra: Any) -> str:
    response = call(server, "POST", "/api/users/", {"name": "John Doe", "email": email, **extra})
    assert response.status_code == 200, response.text
    user_id: str = response.json()["user_id"]
    return user_id


SERVER_BODY = {
    "name": "Production Server",
    "hostname": "prod.example.com",
    "port": 8080,
    "status": "running",
    "connection_name": "ServiceNow Connection",
    "instance_url": "https://dev123456.service-now.com",
    "username": "admin",
    "password": "password123",
}


# -- users -------------------------------------------------------------------------------
def test_user_crud_with_documented_envelopes(server: ThreadServer) -> None:
    created = call(
        server,
        "POST",
        "/api/users/",
        {"name": "John Doe", "email": "john@example.com", "role": "admin"},
    )
    assert created.status_code == 200
    body = created.json()
    assert list(body) == ["status", "message", "user_id"]
    assert body["status"] == "success" and body["message"] == "User created successfully"
    user_id = body["user_id"]
    assert is_object_id(user_id)

    listed = call(server, "GET", "/api/users/").json()
    assert listed["status"] == "success" and listed["message"] == "Users retrieved successfully"
    assert listed["total"] == len(listed["data"]) >= 1
    got = call(server, "GET", f"/api/users/{user_id}").json()
    assert got["message"] == "User retrieved successfully"
    data = got["data"]
    assert set(data) == {"_id", "name", "email", "role", "created_at", "updated_at"}
    assert data["_id"] == user_id and data["role"] == "admin"
    assert data["created_at"].endswith("+00:00")
    assert data in listed["data"]

    updated = call(
        server,
        "PUT",
        f"/api/users/{user_id}",
        {"name": "Jane Doe", "email": "jane@example.com", "role": "user"},
    )
    assert updated.json() == {
        "status": "success",
        "message": "User updated successfully",
        "user_id": user_id,
    }
    data = call(server, "GET", f"/api/users/{user_id}").json()["data"]
    assert (data["name"], data["email"], data["role"]) == ("Jane Doe", "jane@example.com", "user")

    deleted = call(server, "DELETE", f"/api/users/{user_id}")
    assert deleted.status_code == 200
    assert deleted.json()["message"] == "User deleted successfully"
    assert deleted.json()["user_id"] == user_id
    assert call(server, "GET", f"/api/users/{user_id}").status_code == 404


def test_users_answer_with_and_without_trailing_slash(server: ThreadServer) -> None:
    created = call(server, "POST", "/api/users", {"name": "Slash", "email": "noslash@example.com"})
    assert created.status_code == 200, created.text
    assert (
        call(server, "GET", "/api/users").json()["total"]
        == call(server, "GET", "/api/users/").json()["total"]
    )


def test_duplicate_email_is_409_case_insensitive(server: ThreadServer) -> None:
    new_user(server, "dup@example.com")
    again = call(server, "POST", "/api/users/", {"name": "X", "email": "DUP@Example.com"})
    assert again.status_code == 409
    assert again.json() == {"detail": "A user with email DUP@Example.com already exists"}
    other = new_user(server, "other@example.com")
    clash = call(server, "PUT", f"/api/users/{other}", {"email": "Dup@example.com"})
    assert clash.status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"email": "a@example.com"}, 400, "Missing required field: name"),
        ({}, 400, "Missing required fields: name, email"),
        ({"name": "A", "email": "a@example.com", "age": 3}, 400, "Unknown field: age"),
        ({"name": 5, "email": "a@example.com"}, 422, "name must be a string"),
        ({"name": "  ", "email": "a@example.com"}, 422, "name must not be empty"),
        ({"name": "A", "email": "not-an-email"}, 422, "email is not a valid email address"),
        ({"name": "A", "email": "a@example.com", "role": ["admin"]}, 422, "role must be a string"),
    ],
)
def test_user_validation(
    server: ThreadServer, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = call(server, "POST", "/api/users/", body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]


def test_user_id_errors(server: ThreadServer) -> None:
    for method in ("GET", "PUT", "DELETE"):
        bad = call(server, method, "/api/users/nothex", {"name": "x"})
        assert bad.status_code == 400
        assert bad.json()["detail"].startswith("Invalid user id: 'nothex'")
        missing = call(server, method, f"/api/users/{MISSING_ID}", {"name": "x"})
        assert missing.status_code == 404
        assert missing.json() == {"detail": f"User not found: {MISSING_ID}"}
    user_id = new_user(server, "empty-update@example.com")
    empty = call(server, "PUT", f"/api/users/{user_id}", {})
    assert empty.status_code == 400 and "Nothing to update" in empty.json()["detail"]


# -- servers -----------------------------------------------------------------------------
def test_server_crud_and_password_never_returned(server: ThreadServer) -> None:
    user_id = new_user(server, "servers@example.com")
    created = call(server, "POST", "/api/servers/create", {"user_id": user_id, **SERVER_BODY})
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["status"] == "success"
    assert body["message"] == "Server Production Server created successfully"
    server_id = body["server_id"]

    got = call(server, "GET", f"/api/servers/{server_id}")
    assert got.json()["message"] == "Server retrieved successfully"
    data = got.json()["data"]
    expected = {k: v for k, v in SERVER_BODY.items() if k != "password"}
    assert {k: data[k] for k in expected} == expected
    assert data["_id"] == server_id and data["user_id"] == user_id
    assert data["has_password"] is True
    assert "password" not in data and "password123" not in got.text

    listed = call(server, "GET", "/api/servers/").json()
    assert listed["message"] == "Servers retrieved successfully"
    assert listed["total"] == len(listed["data"]) and data in listed["data"]
    assert call(server, "GET", "/api/servers").json()["total"] == listed["total"]
    mine = call(server, "GET", f"/api/servers/user/{user_id}").json()
    assert mine["total"] == 1 and mine["data"] == [data]
    assert "password123" not in requests.get(server.url + "/api/servers/", timeout=5).text

    updated = call(server, "PUT", f"/api/servers/{server_id}", {"port": 9090, "password": ""})
    assert updated.json() == {
        "status": "success",
        "message": "Server updated successfully",
        "server_id": server_id,
    }
    data = call(server, "GET", f"/api/servers/{server_id}").json()["data"]
    assert data["port"] == 9090 and data["has_password"] is False
    deleted = call(server, "DELETE", f"/api/servers/{server_id}")
    assert deleted.json() == {
        "status": "success",
        "message": "Server deleted successfully",
        "server_id": server_id,
    }
    assert call(server, "GET", f"/api/servers/{server_id}").status_code == 404


def test_password_is_encrypted_at_rest_with_a_0600_key(server: ThreadServer) -> None:
    settings = server.app.ctx.settings
    user_id = new_user(server, "secret@example.com")
    created = call(
        server,
        "POST",
        "/api/servers/create",
        {"user_id": user_id, **SERVER_BODY, "password": "s3cret-pass"},
    )
    server_id = created.json()["server_id"]
    key_path = settings.data_dir / "secret.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    db = Path(settings.store_url.removeprefix("sqlite:///"))
    raw = db.read_bytes() + (
        db.with_name(db.name + "-wal").read_bytes()
        if db.with_name(db.name + "-wal").exists()
        else b""
    )
    assert b"s3cret-pass" not in raw
    stored = server.app.ctx.store.get_server(server_id)
    assert stored.password_encrypted and stored.password_encrypted != "s3cret-pass"
    assert (
        Fernet(key_path.read_bytes().strip()).decrypt(stored.password_encrypted.encode())
        == b"s3cret-pass"
    )
    with sqlite3.connect(db) as conn:
        dumped = "\n".join(conn.iterdump())
    assert "s3cret-pass" not in dumped


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"port": "8080"}, 422, "port must be an integer"),
        ({"port": 0}, 422, "port must be at least 1"),
        ({"port": 70000}, 422, "port must be at most 65535"),
        ({"port": True}, 422, "port must be an integer"),
        ({"name": 3}, 422, "name must be a string"),
        ({"hostname": "bad host!"}, 422, "hostname is not a valid host name"),
        ({"instance_url": "ftp://x"}, 422, "instance_url must start with http"),
        ({"user_id": "nothex"}, 400, "Invalid user id"),
        ({"user_id": MISSING_ID}, 404, f"User not found: {MISSING_ID}"),
        ({"colour": "red"}, 400, "Unknown field: colour"),
    ],
)
def test_server_validation(
    server: ThreadServer, change: dict[str, Any], status: int, fragment: str
) -> None:
    user_id = new_user(server, f"v{abs(hash(str(change)))}@example.com")
    response = call(
        server, "POST", "/api/servers/create", {"user_id": user_id, **SERVER_BODY, **change}
    )
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]


def test_server_missing_fields_and_ids(server: ThreadServer) -> None:
    missing = call(server, "POST", "/api/servers/create", {"name": "x"})
    assert missing.status_code == 400
    assert missing.json() == {"detail": "Missing required fields: user_id, hostname, port"}
    for method in ("GET", "PUT", "DELETE"):
        assert call(server, method, "/api/servers/zzz", {"port": 1}).status_code == 400
        assert call(server, method, f"/api/servers/{MISSING_ID}", {"port": 1}).json() == {
            "detail": f"Server not found: {MISSING_ID}"
        }
    assert call(server, "GET", "/api/servers/user/zzz").status_code == 400
    assert call(server, "GET", f"/api/servers/user/{MISSING_ID}").status_code == 404
    user_id = new_user(server, "srv-update@example.com")
    created = call(server, "POST", "/api/servers/create", {"user_id": user_id, **SERVER_BODY})
    server_id = created.json()["server_id"]
    moved = call(server, "PUT", f"/api/servers/{server_id}", {"user_id": MISSING_ID})
    assert moved.status_code == 404
    assert call(server, "GET", f"/api/servers/{server_id}").json()["data"]["user_id"] == user_id


def test_deleting_a_user_removes_their_jobs_and_servers(server: ThreadServer) -> None:
    user_id = new_user(server, "leaver@example.com")
    keeper = new_user(server, "keeper@example.com")
    job = {
        "job_class_string": "jobs.echo.EchoJob",
        "name": "Leaver job",
        "minute": "*",
        "hour": "*",
    }
    job_ids = [
        call(server, "POST", "/api/scheduler/jobs", {"user_id": owner, **job}).json()["job_id"]
        for owner in (user_id, user_id, keeper)
    ]
    call(server, "POST", "/api/servers/create", {"user_id": user_id, **SERVER_BODY})
    deleted = call(server, "DELETE", f"/api/users/{user_id}").json()
    assert deleted["jobs_removed"] == 2 and deleted["servers_removed"] == 1
    for job_id in job_ids[:2]:
        assert call(server, "GET", f"/api/scheduler/jobs/{job_id}").status_code == 404
    assert call(server, "GET", f"/api/scheduler/jobs/{job_ids[2]}").status_code == 200
    assert server.app.ctx.store.list_jobs(owner=user_id) == []
    assert server.app.ctx.store.list_servers(user_id) == []


def test_bad_update_bodies_change_nothing(server: ThreadServer) -> None:
    user_id = new_user(server, "unchanged@example.com")
    created = call(server, "POST", "/api/servers/create", {"user_id": user_id, **SERVER_BODY})
    server_id = created.json()["server_id"]
    for path in (f"/api/users/{user_id}", f"/api/servers/{server_id}"):
        before = call(server, "GET", path).json()["data"]
        for raw, status in (
            (b"{oops", 400),
            (b"[1]", 400),
            (b'{"name": 5}', 422),
            (b'{"name": "ok", "port": "x", "email": "x"}', 422),
        ):
            response = requests.put(server.url + path, data=raw, timeout=5)
            assert response.status_code in (status, 400), (path, raw, response.text)
            assert list(response.json()) == ["detail"]
        assert call(server, "GET", path).json()["data"] == before


def _key_of(folder: str, queue: Any) -> None:
    from api.config import Settings
    from api.secrets import load_key

    queue.put(load_key(Settings(data_dir=Path(folder))))


def test_processes_starting_together_on_one_data_folder_share_one_key(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    starters = [context.Process(target=_key_of, args=(str(tmp_path), queue)) for _ in range(6)]
    for starter in starters:
        starter.start()
    keys = {queue.get(timeout=60) for _ in starters}
    for starter in starters:
        starter.join(60)
    assert len(keys) == 1
    Fernet(keys.pop())  # a whole, valid key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
