"""Output while it runs: GET /api/scheduler/executions/{id} shows the output so far and
/{id}/stream sends it as SSE, for bash, python scripts and job classes (issue 14)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.model import Job, JobKind
from engine.triggers import DateTrigger
from tests.api_support import ThreadServer, make_settings, running_server, wait_for, write_script
from tests.sse_support import SseStream

LINES = 5
BASH_TICKS = (
    f'#!/bin/bash\nfor i in $(seq {LINES}); do echo "tick $(date +%s.%N)"; sleep 0.3; done\n'
)
PYTHON_TICKS = (
    "import time\n"
    "def main():\n"
    f"    for _ in range({LINES}):\n"
    '        print(f"tick {time.time()}")\n'
    "        time.sleep(0.3)\n"
    '    return "done"\n'
)
CLASS_TICKS = (
    "import time\n"
    "from jobs.base import BaseJob\n"
    "class TickJob(BaseJob):\n"
    '    description = "prints a line every 0.3 s"\n'
    "    arguments = ()\n"
    "    def run(self):\n"
    f"        for _ in range({LINES}):\n"
    '            print(f"tick {time.time()}")\n'
    "            time.sleep(0.3)\n"
)
FAR = DateTrigger(datetime(2099, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("output_api")
    job_path = tmp / "jobpath"
    job_path.mkdir()
    (job_path / "ticking_jobs.py").write_text(CLASS_TICKS)
    settings = make_settings(tmp, job_paths=(job_path,), output_cap=1024, sse_heartbeat=0.5)
    with running_server(settings) as live:
        root: Path = live.app.ctx.settings.script_roots[0]
        write_script(root, "ticks.sh", BASH_TICKS)
        write_script(root, "ticks.py", PYTHON_TICKS, executable=False)
        write_script(
            root,
            "chatty.sh",
            "#!/bin/bash\nfor i in $(seq 300); do echo 0123456789; done\nsleep 1\necho late\n",
        )
        yield live


def run_now(server: ThreadServer, job_id: str, kind: JobKind, target: str) -> str:
    if kind is not JobKind.CLASS:
        target = str(server.app.ctx.settings.script_roots[0] / target)
    job = Job(id=job_id, name=job_id, kind=kind, target=target, trigger=FAR)
    server.app.ctx.scheduler.add_job(job, replace=True).result(10)
    response = requests.post(f"{server.url}/api/scheduler/jobs/{job_id}/run", timeout=5)
    assert response.status_code == 200, response.text
    execution_id: str = response.json()["execution_id"]
    return execution_id


def get(server: ThreadServer, execution_id: str) -> dict[str, Any]:
    response = requests.get(f"{server.url}/api/scheduler/executions/{execution_id}", timeout=5)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        (JobKind.BASH, "ticks.sh"),
        (JobKind.PYTHON, "ticks.py"),
        (JobKind.CLASS, "ticking_jobs.TickJob"),
    ],
)
def test_each_line_streams_within_half_a_second(
    server: ThreadServer, kind: JobKind, target: str
) -> None:
    execution_id = run_now(server, f"ticks-{kind}", kind, target)
    path = f"/api/scheduler/executions/{execution_id}/stream"
    with SseStream(server.port, path) as stream:
        delays: list[float] = []
        text = ""
        while True:
            message = stream.next(10)
            received = time.time()
            if message.event == "end":
                end = message.json()
                break
            assert message.event == "output"
            chunk = message.json()["text"]
            text += chunk
            delays.extend(
                received - float(line.split()[1])
                for line in chunk.splitlines()
                if line.startswith("tick ")
            )
            if len(delays) == 2:  # mid-run: the execution view shows the output so far
                shown = get(server, execution_id)
                assert shown["status"] == "running"
                assert shown["output"].count("tick ") >= 2
                assert shown["output"].count("tick ") < LINES
    assert len(delays) == LINES, text
    assert max(delays) < 0.5, delays
    assert end["status"] == "completed", end
    final = get(server, execution_id)
    assert final["status"] == "completed"
    assert final["output"].count("tick ") == LINES


def test_a_finished_execution_streams_its_stored_output_and_end(server: ThreadServer) -> None:
    execution_id = run_now(server, "ticks-done", JobKind.BASH, "ticks.sh")
    wait_for(lambda: get(server, execution_id)["status"] == "completed", 10, "the run to end")
    path = f"/api/scheduler/executions/{execution_id}/stream"
    with SseStream(server.port, path) as stream:
        messages = stream.until("end", 5)
    assert [m.event for m in messages] == ["output", "end"]
    assert messages[0].json()["text"].count("tick ") == LINES
    assert messages[1].json()["status"] == "completed"
    assert stream.closed.wait(5)  # the server ends the stream after `end`


def test_the_output_cap_holds_while_it_runs(server: ThreadServer) -> None:
    execution_id = run_now(server, "chatty", JobKind.BASH, "chatty.sh")  # 3,300 bytes
    path = f"/api/scheduler/executions/{execution_id}/stream"
    with SseStream(server.port, path) as stream:
        first = stream.next(5)
        assert first.event == "output"
        wait_for(lambda: get(server, execution_id)["output"].endswith("bytes]\n"), 5, "the note")
        shown = get(server, execution_id)
        assert shown["status"] == "running"
        assert len(shown["output"].split("[cronwell:")[0]) <= 1024
        assert "more bytes of output dropped; the cap is 1024 bytes" in shown["output"]
        rest = stream.until("end", 10)
    streamed = first.json()["text"] + "".join(m.json()["text"] for m in rest[:-1])
    kept, _, note = streamed.partition("[cronwell:")
    assert len(kept.encode()) == 1024 and "late" not in kept
    assert "dropped; the cap is 1024 bytes" in note


def test_unknown_and_malformed_ids(server: ThreadServer) -> None:
    missing = requests.get(f"{server.url}/api/scheduler/executions/{'0' * 24}/stream", timeout=5)
    assert missing.status_code == 404 and "detail" in missing.json()
    bad = requests.get(f"{server.url}/api/scheduler/executions/nope/stream", timeout=5)
    assert bad.status_code == 400


MIXED_BASH = "#!/bin/bash\necho out one\nsleep 0.2\necho err one >&2\nsleep 0.2\necho out two\n"
MIXED_PYTHON = (
    "import sys, time\n"
    "def main():\n"
    '    print("out one", flush=True)\n'
    "    time.sleep(0.2)\n"
    '    print("err one", file=sys.stderr, flush=True)\n'
    "    time.sleep(0.2)\n"
    '    print("out two", flush=True)\n'
)
MIXED_CLASS = (
    "import sys, time\n"
    "from jobs.base import BaseJob\n"
    "class MixedJob(BaseJob):\n"
    '    description = "writes to stdout, then stderr, then stdout"\n'
    "    arguments = ()\n"
    "    def run(self):\n"
    '        print("out one")\n'
    "        time.sleep(0.2)\n"
    '        print("err one", file=sys.stderr)\n'
    "        time.sleep(0.2)\n"
    '        print("out two")\n'
)


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        (JobKind.BASH, "mixed.sh"),
        (JobKind.PYTHON, "mixed.py"),
        (JobKind.CLASS, "mixed_jobs.MixedJob"),
    ],
)
def test_each_message_says_which_stream_it_came_from(
    server: ThreadServer, kind: JobKind, target: str
) -> None:
    settings = server.app.ctx.settings
    write_script(settings.script_roots[0], "mixed.sh", MIXED_BASH)
    write_script(settings.script_roots[0], "mixed.py", MIXED_PYTHON, executable=False)
    (settings.job_paths[0] / "mixed_jobs.py").write_text(MIXED_CLASS)
    execution_id = run_now(server, f"mixed-{kind}", kind, target)
    with SseStream(server.port, f"/api/scheduler/executions/{execution_id}/stream") as stream:
        parts: list[tuple[str, str]] = []
        while (message := stream.next(10)).event != "end":
            body = message.json()
            if parts and parts[-1][0] == body["stream"]:
                parts[-1] = (body["stream"], parts[-1][1] + body["text"])
            else:
                parts.append((body["stream"], body["text"]))
    assert parts == [("stdout", "out one\n"), ("stderr", "err one\n"), ("stdout", "out two\n")]
