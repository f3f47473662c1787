"""engine/running/live.py: a running execution's output, capped, read by offset."""

from __future__ import annotations

from engine.interfaces import STDERR, STDOUT, Outcome, RunRequest
from engine.model import Status
from engine.running.live import LiveOutput
from tests.engine_support import T0, Harness, date_at, make_job


def test_reads_from_an_offset_and_keeps_at_most_the_cap() -> None:
    live = LiveOutput(cap=10)
    live.write(b"abc")
    assert live.read() == b"abc" and live.read(3) == b""
    live.write(b"defghij")
    assert live.read(3) == b"defghij" and live.size == 10
    live.write(b"klm")
    assert live.read() == b"abcdefghij" and live.dropped == 3
    live.write(b"")
    assert live.size == 10 and live.dropped == 3


def test_a_cap_cuts_a_chunk_in_the_middle() -> None:
    live = LiveOutput(cap=4)
    live.write(b"123456")
    assert live.read() == b"1234" and live.dropped == 2


def test_the_engine_lends_a_live_output_while_it_runs_and_forgets_it_after() -> None:
    seen: dict[str, object] = {}

    def run(request: RunRequest) -> Outcome:
        assert request.live is not None
        request.live.write(b"half way\n")
        seen["during"] = harness.scheduler.live_output(request.execution.id)
        return Outcome(Status.COMPLETED, output="half way\n")

    with Harness(runner=run, output_cap=100) as harness:
        harness.add(make_job("j", date_at(T0)))
        harness.at(0)
        harness.settle()
        execution = harness.executions("j")[0]
        during = seen["during"]
        assert isinstance(during, LiveOutput) and during.read() == b"half way\n"
        assert during.finished and during.cap == 100
        assert harness.scheduler.live_output(execution.id) is None  # recorded: ask the store


def test_parts_tell_stderr_apart_from_an_offset_and_under_the_cap() -> None:
    live = LiveOutput(cap=12)
    live.write(b"out1")
    live.write(b"err1", STDERR)
    live.write(b"err2", STDERR)  # touching stderr writes make one part
    live.write(b"out2")  # past the cap: dropped, so the parts end with the stderr
    assert live.read_parts() == [(STDOUT, b"out1"), (STDERR, b"err1err2")]
    assert live.read_parts(6) == [(STDERR, b"r1err2")]
    assert live.read_parts(12) == [] and live.dropped == 4
    assert live.read() == b"out1err1err2"
    mixed = LiveOutput(cap=100)
    for data, stream in ((b"a", STDOUT), (b"b", STDERR), (b"c", STDOUT), (b"d", STDERR)):
        mixed.write(data, stream)
    assert mixed.read_parts(1) == [(STDERR, b"b"), (STDOUT, b"c"), (STDERR, b"d")]
