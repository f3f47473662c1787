"""The OpenAPI document means what it says: every operation has a real answer schema
and the security it needs, path parameters their shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from api.open_paths import is_open
from tests.api_support import make_settings, running_server


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_every_answer_has_a_closed_schema_and_every_operation_its_security(
    tmp_path: Path,
) -> None:
    with running_server(make_settings(tmp_path, api_keys=("k",))) as live:
        spec = requests.get(
            f"{live.url}/openapi.json", headers={"X-API-Key": "k"}, timeout=5
        ).json()
    components = spec["components"]["schemas"]
    assert len(operations(spec)) >= 34
    for path, method, op in operations(spec):
        content = op["responses"]["200"]["content"]
        (media,) = content
        schema = content[media]["schema"]
        assert schema != {"type": "object"}, (method, path)
        if media == "application/json" and path != "/openapi.json":
            assert schema["additionalProperties"] is False and schema["required"], (method, path)
        expected = [] if is_open(path) else [{"ApiKey": []}]
        assert op["security"] == expected, (method, path)
    for name, component in components.items():
        assert component["additionalProperties"] is False, name
    job = components["SchedulerJob"]
    assert set(job["required"]) >= {"_id", "job_class_string", "next_run_time", "pub_kwargs"}
    user_param = spec["paths"]["/api/users/{user_id}"]["get"]["parameters"][0]
    assert user_param["schema"]["pattern"] == "^[0-9a-f]{24}$"
    health = spec["paths"]["/api/health"]["get"]["responses"]["503"]["content"]
    assert health["application/json"]["schema"]["required"] == ["status", "scheduler_running"]


def test_without_keys_the_key_is_optional(tmp_path: Path) -> None:
    with running_server(make_settings(tmp_path)) as live:
        spec = requests.get(f"{live.url}/openapi.json", timeout=5).json()
    security = spec["paths"]["/api/jobs"]["get"]["security"]
    assert security == [{"ApiKey": []}, {}]
    assert spec["paths"]["/api/scheduler/health"]["get"]["security"] == []


def test_operation_ids_are_stable_and_every_link_reaches_one(tmp_path: Path) -> None:
    with running_server(make_settings(tmp_path)) as live:
        spec = requests.get(f"{live.url}/openapi.json", timeout=5).json()
    ids = {op["operationId"] for _, _, op in operations(spec)}
    assert "users.get_user.get" in ids and len(ids) == len(operations(spec))
    links = [
        link
        for _, _, op in operations(spec)
        for link in op["responses"]["200"].get("links", {}).values()
    ]
    assert len(links) >= 20
    for link in links:
        assert link["operationId"] in ids, link
        ((param, expression),) = (link.get("parameters") or link["requestBody"]).items()
        assert expression.startswith("$response.body#/") and param.endswith("_id"), link
