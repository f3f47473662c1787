"""The Dockerfile and compose.yaml agree with what the service really reads.

No Docker engine runs on the build machines, so these files are checked statically:
each compose profile's variables are fed through the real `load_settings`, and the
ports, volumes and health check are compared with what that yields.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from api.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
CONFIG_SOURCE = (ROOT / "api" / "config.py").read_text()
PROFILES = {"sqlite": "sqlite", "mongo": "mongodb", "oracle": "oracle"}


def dockerfile_lines() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def runtime_stage() -> list[str]:
    lines = dockerfile_lines()
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last_from:]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in runtime_stage():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def instruction(name: str) -> str:
    found = [line for line in runtime_stage() if line.startswith(name + " ")]
    assert len(found) == 1, f"expected one {name} in the runtime stage, found {found}"
    return found[0][len(name) + 1 :]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def cronwell_service(compose: dict, profile: str) -> tuple[str, dict]:
    matches = [
        (name, svc)
        for name, svc in compose["services"].items()
        if profile in svc.get("profiles", []) and svc.get("image") == "cronwell:latest"
    ]
    assert len(matches) == 1, f"profile {profile} should run exactly one cronwell service"
    return matches[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_environment_selects_its_store(compose: dict, profile: str) -> None:
    _, svc = cronwell_service(compose, profile)
    env = {**dockerfile_env(), **{k: str(v) for k, v in svc["environment"].items()}}
    for name in svc["environment"]:
        assert f'"{name}"' in CONFIG_SOURCE, f"{name} is set in compose but never read"
    settings = load_settings(env, dotenv=None)
    assert urlparse(settings.store_url).scheme == PROFILES[profile]
    container_ports = {int(p.split(":")[-1]) for p in svc["ports"]}
    assert container_ports == {settings.port}
    mounts = {v.split(":")[1] for v in svc["volumes"]}
    assert str(settings.data_dir) in mounts
    assert {str(r) for r in settings.script_roots} <= mounts
    assert settings.host == "0.0.0.0"


@pytest.mark.parametrize("profile", ["mongo", "oracle"])
def test_database_service_is_in_the_same_profile(compose: dict, profile: str) -> None:
    _, svc = cronwell_service(compose, profile)
    settings = load_settings({**dockerfile_env(), **svc["environment"]}, dotenv=None)
    (dependency,) = svc["depends_on"]
    assert profile in compose["services"][dependency]["profiles"]
    target = settings.store_url if profile == "mongo" else settings.oracle_dsn
    assert dependency in target, f"{target} does not point at the {dependency} service"


@pytest.mark.parametrize("profile", PROFILES)
def test_stop_grace_outlasts_the_shutdown_timeout(compose: dict, profile: str) -> None:
    _, svc = cronwell_service(compose, profile)
    grace = int(svc["stop_grace_period"].rstrip("s"))
    settings = load_settings(dockerfile_env(), dotenv=None)
    assert grace > settings.shutdown_timeout


def test_named_volumes_are_declared(compose: dict) -> None:
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"]


def test_dockerfile_runtime_contract() -> None:
    env = dockerfile_env()
    settings = load_settings(env, dotenv=None)
    assert instruction("EXPOSE") == str(settings.port)
    assert str(settings.data_dir) in instruction("VOLUME")
    # root for the entrypoint only, which runs the service as the data dir's owner and
    # scripts as CRONWELL_RUN_AS's user (docker/entrypoint.sh; make image-test runs it)
    assert instruction("USER") == "root"
    assert env["CRONWELL_RUN_AS"] == "cronwell-jobs"
    health = instruction("HEALTHCHECK")
    assert "/api/health" in health and "CRONWELL_PORT" in health
    for name in env:
        if name.startswith("CRONWELL_"):
            assert f'"{name}"' in CONFIG_SOURCE, f"Dockerfile sets {name}, which is never read"


def test_dockerfile_ships_every_package_and_the_console_script() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = {p.strip() for p in cfg["options.packages.find"]["include"].split() if "*" not in p}
    copied = {
        line.split()[1]
        for line in dockerfile_lines()
        if line.startswith("COPY ") and "--from" not in line
    }
    assert packages <= copied
    script = cfg["options.entry_points"]["console_scripts"].split("=")[0].strip()
    assert instruction("ENTRYPOINT") == '["cronwell-entrypoint"]'
    assert "COPY docker/entrypoint.sh /usr/local/bin/cronwell-entrypoint" in dockerfile_lines()
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text()
    # the service is the console script, run as the unprivileged user or as it was started
    assert f'-- {script} "$@"' in entrypoint and f'exec {script} "$@"' in entrypoint
    assert (ROOT / "docker" / "entrypoint.sh").stat().st_mode & 0o111


def test_dockerignore_keeps_state_and_secrets_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", ".env", ".git"} <= ignored


def test_image_defaults_let_the_seed_variables_choose_the_store() -> None:
    """`docker run -e MONGO_URI=...` must select MongoDB as it does outside a container
    (an image-level CRONWELL_STORE would silently win), and the default SQLite file must
    land in the data volume."""
    env = dockerfile_env()
    mongo = load_settings({**env, "MONGO_URI": "mongodb://db:27017"}, dotenv=None)
    assert mongo.store_url == "mongodb://db:27017"
    oracle = load_settings({**env, "CRONWELL_ORACLE_DSN": "db:1521/FREEPDB1"}, dotenv=None)
    assert urlparse(oracle.store_url).scheme == "oracle"
    default = load_settings(env, dotenv=None)
    assert default.store_url.startswith("sqlite:///")
    path = Path(default.store_url.removeprefix("sqlite:///"))
    database = path if path.is_absolute() else Path(instruction("WORKDIR")) / path
    assert database.is_relative_to(default.data_dir)


def test_the_cluster_profile_runs_two_named_nodes_on_one_mongodb(compose: dict) -> None:
    nodes = {
        name: svc
        for name, svc in compose["services"].items()
        if "cluster" in svc.get("profiles", []) and svc.get("image") == "cronwell:latest"
    }
    assert len(nodes) == 2
    settings = [
        load_settings(
            {**dockerfile_env(), **{k: str(v) for k, v in s["environment"].items()}}, dotenv=None
        )
        for s in nodes.values()
    ]
    assert len({s.node_id for s in settings}) == 2 and all(s.node_id for s in settings)
    assert len({(s.store_url, s.db_name) for s in settings}) == 1
    assert urlparse(settings[0].store_url).scheme == "mongodb"
    host_ports = [int(p.split(":")[0]) for s in nodes.values() for p in s["ports"]]
    assert len(set(host_ports)) == 2
    for svc in nodes.values():
        (dependency,) = svc["depends_on"]
        assert "cluster" in compose["services"][dependency]["profiles"]


def test_the_image_leaves_the_benchmarks_out() -> None:
    assert not any(line.startswith("COPY bench") for line in dockerfile_lines())
