"""schemathesis over the service's own /openapi.json, against a real server on loopback.

Every operation is fuzzed with a fixed seed and a bounded number of examples, with
checks that no answer is a 5xx, that every status, content type, header and body
conforms to the document (its response schemas are closed objects, api/schemas.py),
that schema-violating requests are refused, that a missing API key is refused (keys
are configured), and the stateful checks (a deleted record is gone, a created one is
there). The examples in the document are seeded as real records, so requests built
from them get past the owner lookups into the validation behind them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.ids import new_id
from engine.model import Execution, Job, JobKind, Status, Surface
from engine.triggers import CronTrigger
from stores.records import Server, User
from tests.api_support import ThreadServer, make_settings, running_server

CONFIG = Path(__file__).with_name("fuzz") / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
KEY = "fuzz-key"
#: a deeper run by hand: CRONWELL_FUZZ_EXAMPLES=500 CRONWELL_FUZZ_SEED=3 pytest ...
SEED = int(os.environ.get("CRONWELL_FUZZ_SEED", "17"))
EXAMPLES = int(os.environ.get("CRONWELL_FUZZ_EXAMPLES", "25"))
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "ignored_auth",
    )
)
#: the document's example ids (the scheduler seed's own)
USER, SERVER, JOB, EXECUTION = (f"507f1f77bcf86cd79943901{n}" for n in (1, 2, 3, 4))


def seed_examples(live: ThreadServer) -> None:
    store = live.app.ctx.store
    now = datetime.now(UTC)
    store.add_user(User(USER, "John Doe", "john@example.com", created_at=now, updated_at=now))
    store.add_server(
        Server(SERVER, USER, "Production Server", "prod.example.com", 8080, created_at=now)
    )
    job = Job(
        id=JOB,
        name="Daily Echo Job",
        kind=JobKind.CLASS,
        target="jobs.echo.EchoJob",
        trigger=CronTrigger(minute="0", hour="9"),
        owner=USER,
        surface=Surface.SCHEDULER,
    )
    live.app.ctx.scheduler.add_job(job).result(10)
    store.add_execution(
        Execution(
            id=EXECUTION,
            job_id=JOB,
            status=Status.COMPLETED,
            created_at=now,
            owner=USER,
            job_name=job.name,
            job_kind=job.kind,
            job_target=job.target,
        )
    )
    assert new_id() != USER  # the seeded ids cannot collide with generated ones


TOOL_CRASH = "SystemError: AST constructor recursion depth mismatch"


@pytest.mark.timeout(300 if EXAMPLES <= 25 else 3600)
def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    assert SCHEMATHESIS.exists(), "schemathesis is in the test extras"
    # the fuzzer sends thousands of wrong keys on purpose: the brute-force guard (tested
    # in tests/test_auth.py) would answer them all 429 after the tenth
    settings = make_settings(tmp_path, api_keys=(KEY,), auth_failure_limit=1_000_000)
    with running_server(settings) as live:
        seed_examples(live)
        command = [
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "run",
            f"{live.url}/openapi.json",
            "--header",
            f"X-API-Key: {KEY}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            str(SEED),
            "--generation-database",
            "none",
            # the two SSE streams never end by themselves and send JSON lines, not one
            # schema'd body: tests/test_api_events.py and test_api_output_stream.py drive them
            "--exclude-path-regex",
            "/events$|/stream$",
            # one worker thread: hypothesis parses source with `ast` as it generates, and
            # CPython 3.11's AST builder keeps its recursion depth in state shared by the
            # interpreter's threads (cpython#106905), so two workers generating at once
            # crash with "AST constructor recursion depth mismatch", more often the
            # busier the machine
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-color",
        ]
        for _ in range(2):
            run = subprocess.run(
                command,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=140 if EXAMPLES <= 25 else 3500,
                check=False,
            )
            # a crash inside the fuzzer's own code generation (the CPython 3.11 AST error
            # above, seen a few times in ten runs with two workers and none since one)
            # is the tool's, not a finding about the service: that run alone is tried
            # once more; any check failure or other error fails the test
            if TOOL_CRASH not in run.stdout + run.stderr:
                break
    report = run.stdout + run.stderr
    summary = report[report.rfind("SUMMARY") :] if "SUMMARY" in report else report[-3000:]
    print(summary)  # pytest -s / -rP shows the operations and case counts
    assert run.returncode == 0, report[-20_000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    cases = re.search(r"(\d+) generated, (\d+) passed", report)
    assert selected and tested and cases, summary
    # every operation but the two excluded streams, and every selected one tested
    assert int(selected.group(2)) - int(selected.group(1)) == 2, summary
    assert selected.group(1) == tested.group(1), summary
    assert int(tested.group(1)) >= 30 and cases.group(1) == cases.group(2), summary
