"""Configuration: `.env` in the working folder, the real environment winning over it,
and `cronwell serve --check` refusing a bad configuration or an unreachable store with
one clear line (exit 1), as a real child process.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from api.config import load_settings
from engine.errors import InvalidInput
from runners.identity import describe_identity
from tests.api_support import CRONWELL, ROOT, free_port


def write_dotenv(folder: Path, text: str) -> Path:
    path = folder / ".env"
    path.write_text(text)
    return path


def test_dotenv_is_read_and_the_real_environment_wins(tmp_path: Path) -> None:
    dotenv = write_dotenv(
        tmp_path,
        "# comments and export prefixes are fine\n"
        "export CRONWELL_PORT=6001\n"
        "CRONWELL_TIMEZONE='Europe/Paris'\n"
        'CRONWELL_POOL_SIZE="3"\n',
    )
    from_file = load_settings({}, dotenv=dotenv)
    assert (from_file.port, from_file.timezone, from_file.pool_size) == (6001, "Europe/Paris", 3)
    overridden = load_settings({"CRONWELL_PORT": "7002"}, dotenv=dotenv)
    assert overridden.port == 7002  # the real environment wins ...
    assert overridden.timezone == "Europe/Paris"  # ... variable by variable


def test_mongo_uri_and_db_name_in_dotenv_select_mongodb(tmp_path: Path) -> None:
    # the scheduler document's own .env, verbatim
    dotenv = write_dotenv(tmp_path, "MONGO_URI=mongodb://localhost:27017\nDB_NAME=texium_db\n")
    settings = load_settings({}, dotenv=dotenv)
    assert (settings.store_url, settings.db_name) == ("mongodb://localhost:27017", "texium_db")
    assert load_settings({}, dotenv=None).store_url == "sqlite:///var/cronwell.db"
    explicit = load_settings({"CRONWELL_STORE": "sqlite:///x.db"}, dotenv=dotenv)
    assert explicit.store_url == "sqlite:///x.db"  # CRONWELL_STORE beats MONGO_URI


def check(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`cronwell serve --check ...` in `cwd` with a clean CRONWELL_/Mongo environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRONWELL_") and k not in {"MONGO_URI", "DB_NAME"}
    }
    done = subprocess.run(  # noqa: PLW1510 - the exit code is what is checked
        [*CRONWELL, "serve", "--check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    return done.returncode, done.stdout, done.stderr


def one_line_failure(result: tuple[int, str, str]) -> str:
    code, stdout, stderr = result
    assert code == 1 and stdout == "", result
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("cronwell: ")
    return stderr.strip()


def test_check_reads_dotenv_from_the_working_folder(tmp_path: Path) -> None:
    closed = free_port()
    write_dotenv(
        tmp_path,
        f"MONGO_URI=mongodb://ops:s3cret@127.0.0.1:{closed}/?serverSelectionTimeoutMS=300\n"
        "DB_NAME=texium_db\n",
    )
    line = one_line_failure(check(tmp_path))
    assert line.startswith("cronwell: cannot open the mongo store mongodb://ops:***@127.0.0.1")
    assert "s3cret" not in line
    # the real environment wins over .env: the same folder, an explicit SQLite store
    code, stdout, stderr = check(tmp_path, env={"CRONWELL_STORE": "sqlite:///here.db"})
    assert code == 0, stderr
    assert stdout.startswith("cronwell: configuration OK; store sqlite:///here.db (sqlite)")
    assert (tmp_path / "here.db").is_file()


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        pytest.param(
            (),
            {"CRONWELL_TIMEZONE": "Nowhere/Town"},
            "cronwell: invalid configuration: unknown timezone: 'Nowhere/Town'",
            id="bad-timezone-env",
        ),
        pytest.param(
            (),
            {"CRONWELL_PORT": "http"},
            "cronwell: invalid configuration: CRONWELL_PORT must be a whole number, not 'http'",
            id="bad-port",
        ),
        pytest.param(
            (),
            {"CRONWELL_MISFIRE_GRACE": "10000000000"},
            "cronwell: invalid configuration: CRONWELL_MISFIRE_GRACE must be at most 31536000",
            id="misfire-grace-beyond-a-year",
        ),
        pytest.param(
            (),
            {"CRONWELL_LOG_LEVEL": "chatty"},
            "cronwell: invalid configuration: CRONWELL_LOG_LEVEL must be DEBUG, INFO, "
            "WARNING or ERROR, not 'chatty'",
            id="bad-log-level",
        ),
        pytest.param(
            ("--store", "postgres://db/x"),
            {},
            "cronwell: unsupported store URL 'postgres://db/x'; supported:",
            id="unknown-store",
        ),
    ],
)
def test_check_refuses_bad_configuration(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    line = one_line_failure(check(tmp_path, *args, env=env))
    assert line.startswith(expected), line


def test_check_refuses_a_missing_script_root(tmp_path: Path) -> None:
    """A script root that does not exist fails (not a warning): every script job under
    it would be refused, so the typo is better caught before the service starts."""
    missing = tmp_path / "no-such-folder"
    line = one_line_failure(check(tmp_path, "--script-root", str(missing)))
    assert line == f"cronwell: invalid configuration: script root {missing} is not a directory"


def test_check_refuses_an_unwritable_sqlite_path(tmp_path: Path) -> None:
    """The database's folder cannot be created: its parent is a file (this holds even
    for root, unlike a permission bit)."""
    (tmp_path / "a-file").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'a-file' / 'cronwell.db'}"
    line = one_line_failure(check(tmp_path, "--store", url))
    assert line.startswith(f"cronwell: cannot open the sqlite store {url}: cannot open ")


def test_check_refuses_an_unusable_data_folder(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    data = tmp_path / "a-file" / "data"
    line = one_line_failure(
        check(
            tmp_path,
            "--store",
            f"sqlite:///{tmp_path / 'ok.db'}",
            env={"CRONWELL_DATA_DIR": str(data)},
        )
    )
    assert line.startswith(f"cronwell: data folder {data} is not usable: ")


def test_check_passes_and_names_what_it_checked(tmp_path: Path) -> None:
    roots = tmp_path / "scripts"
    roots.mkdir()
    code, stdout, stderr = check(
        tmp_path,
        "--store",
        "sqlite:///var/cronwell.db",
        "--script-root",
        str(roots),
        env={"CRONWELL_TIMEZONE": "Europe/Berlin"},
    )
    assert (code, stderr) == (0, "")
    assert stdout == (
        "cronwell: configuration OK; store sqlite:///var/cronwell.db (sqlite) opened; "
        f"script roots: {roots}; timezone Europe/Berlin; http://127.0.0.1:5000; "
        f"open (no API key yet); {describe_identity('')}\n"
    )
    assert (tmp_path / "var" / "cronwell.db").is_file()
    assert (tmp_path / "var" / "secret.key").stat().st_mode & 0o777 == 0o600


def test_job_knobs_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "CRONWELL_WEBHOOK_TIMEOUT": "2.5",
            "CRONWELL_HEALTH_CHECK_TIMEOUT": "1",
            "CRONWELL_SMTP_CAFILE": "/etc/ssl/private-ca.pem",
        },
        dotenv=None,
    )
    assert settings.extra == {
        "webhook_timeout": 2.5,
        "health_check_timeout": 1.0,
        "smtp_cafile": "/etc/ssl/private-ca.pem",
    }


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_job_knob_must_be_positive_seconds(value: str) -> None:
    with pytest.raises(InvalidInput, match="CRONWELL_SMTP_TIMEOUT"):
        load_settings({"CRONWELL_SMTP_TIMEOUT": value}, dotenv=None)


def test_observability_settings_come_from_the_environment() -> None:
    defaults = load_settings({}, dotenv=None)
    assert (defaults.metrics_open, defaults.events_window) == (False, 10_000)
    assert (defaults.events_client_queue, defaults.sse_heartbeat) == (1000, 15.0)
    settings = load_settings(
        {
            "CRONWELL_METRICS_OPEN": "true",
            "CRONWELL_EVENTS_WINDOW": "500",
            "CRONWELL_EVENTS_CLIENT_QUEUE": "50",
            "CRONWELL_SSE_HEARTBEAT": "5",
        },
        dotenv=None,
    )
    assert settings.metrics_open is True
    assert (settings.events_window, settings.events_client_queue) == (500, 50)
    assert settings.sse_heartbeat == 5.0


@pytest.mark.parametrize(
    "name", ["CRONWELL_SSE_HEARTBEAT", "CRONWELL_EVENTS_WINDOW", "CRONWELL_EVENTS_CLIENT_QUEUE"]
)
def test_observability_numbers_must_be_at_least_one(name: str) -> None:
    with pytest.raises(InvalidInput, match=name):
        load_settings({name: "0"}, dotenv=None)


def test_the_load_window_is_set_in_whole_seconds_and_0_holds_every_job() -> None:
    assert load_settings({}, dotenv=None).load_ahead == 600.0
    assert load_settings({"CRONWELL_LOAD_AHEAD": "0"}, dotenv=None).load_ahead == 0.0
    assert load_settings({"CRONWELL_LOAD_AHEAD": "3600"}, dotenv=None).load_ahead == 3600.0
    for bad in ("-1", "soon", "99999999999", "5"):
        with pytest.raises(InvalidInput, match="CRONWELL_LOAD_AHEAD"):
            load_settings({"CRONWELL_LOAD_AHEAD": bad}, dotenv=None)
