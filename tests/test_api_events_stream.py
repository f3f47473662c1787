"""GET /api/scheduler/events over real loopback HTTP: a job's whole life in order,
filters, resume with Last-Event-ID, heartbeats, and a stalled client dropped while fires
stay on time (issue 14)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.model import Job, JobKind
from engine.triggers import DateTrigger, IntervalTrigger
from tests.api_support import ThreadServer, make_settings, running_server, wait_for
from tests.sse_support import Message, SseStream

PATH = "/api/scheduler/events"
JOB = {
    "job_class_string": "jobs.echo.EchoJob",
    "name": "Streamed",
    "minute": "0",
    "hour": "9",
    "day_of_month": "*",
    "month": "*",
    "day_of_week": "*",
    "pub_args": ["a"],
}
#: every event of a job created, run once, changed, paused, resumed and deleted
LIFE = [
    "job_added",
    "execution_queued",
    "execution_running",
    "execution_completed",
    "job_modified",
    "job_paused",
    "job_resumed",
    "job_removed",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("events_api")
    with running_server(make_settings(tmp, sse_heartbeat=0.3)) as live:
        yield live


def call(server: ThreadServer, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = requests.request(method, server.url + path, json=body, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def new_user(server: ThreadServer, name: str) -> str:
    body = {"name": name, "email": f"{name}@example.com"}
    user_id: str = call(server, "POST", "/api/users/", body)["user_id"]
    return user_id


def of_job(messages: list[Message], job_id: str) -> list[Message]:
    return [m for m in messages if m.event != "comment" and m.json()["job_id"] == job_id]


def number(message: Message) -> int:
    assert message.id is not None
    return int(message.id.rsplit("-", 1)[1])


def test_a_jobs_whole_life_arrives_in_order(server: ThreadServer) -> None:
    owner = new_user(server, "lifer")
    other = new_user(server, "bystander")
    with (
        SseStream(server.port, PATH) as everything,
        SseStream(server.port, PATH, {"user_id": owner}) as mine,
        SseStream(server.port, PATH, {"user_id": other}) as theirs,
    ):
        wait_for(lambda: server.app.ctx.event_hub.client_count == 3, 5, "three clients")
        job_id = call(server, "POST", "/api/scheduler/jobs", {"user_id": owner, **JOB})["job_id"]
        with SseStream(server.port, PATH, {"job_id": job_id}) as this_job:
            wait_for(lambda: server.app.ctx.event_hub.client_count == 4, 5, "four clients")
            run = call(server, "POST", f"/api/scheduler/jobs/{job_id}/run")
            seen = this_job.until("execution_completed")
            call(server, "PUT", f"/api/scheduler/jobs/{job_id}", {"name": "Renamed"})
            call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/pause")
            call(server, "PATCH", f"/api/scheduler/jobs/{job_id}/resume")
            call(server, "DELETE", f"/api/scheduler/jobs/{job_id}")
            seen += this_job.until("job_removed")
        if seen[0].event == "job_added":  # it may still have been on its way when we joined
            seen = seen[1:]
        assert [m.event for m in seen] == LIFE[1:]
        for stream in (everything, mine):
            messages = of_job(stream.until("job_removed"), job_id)
            assert [m.event for m in messages] == LIFE
            numbers = [number(m) for m in messages]
            assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        completed = seen[2].json()
        assert completed["execution"]["_id"] == run["execution_id"]
        assert completed["execution"]["status"] == "completed"
        assert completed["user_id"] == owner and "output" not in completed["execution"]
        assert seen[3].json()["job"]["name"] == "Renamed"
        assert seen[6].json()["job"]["_id"] == job_id  # the removed job rides along
        # the other user's filter saw none of it: only heartbeats
        quiet = []
        while not theirs.messages.empty():
            message = theirs.messages.get()
            assert message is not None
            quiet.append(message.event)
        assert set(quiet) <= {"comment"}


def test_heartbeats_keep_a_quiet_stream_alive(server: ThreadServer) -> None:
    with SseStream(server.port, PATH, {"job_id": "no-such-job"}) as stream:
        first = stream.next(5, skip_comments=False)
        second = stream.next(5, skip_comments=False)
        assert (first.event, second.event) == ("comment", "comment")
        assert 0.1 < second.arrived - first.arrived < 1.5


def test_resume_with_last_event_id_loses_nothing(server: ThreadServer) -> None:
    owner = new_user(server, "resumer")
    job_ids: list[str] = []
    with SseStream(server.port, PATH, {"user_id": owner}) as stream:
        wait_for(lambda: server.app.ctx.event_hub.client_count >= 1, 5, "a client")
        job_ids.append(
            call(server, "POST", "/api/scheduler/jobs", {"user_id": owner, **JOB})["job_id"]
        )
        first = stream.next()
        assert first.event == "job_added"
    # while nobody listens: more changes
    for _ in range(5):
        body = {"user_id": owner, **JOB}
        job_ids.append(call(server, "POST", "/api/scheduler/jobs", body)["job_id"])
    call(server, "PATCH", f"/api/scheduler/jobs/{job_ids[0]}/pause")
    assert first.id is not None
    with SseStream(server.port, PATH, {"user_id": owner}, {"Last-Event-ID": first.id}) as resumed:
        replayed = [resumed.next() for _ in range(6)]
        assert [m.event for m in replayed] == ["job_added"] * 5 + ["job_paused"]
        assert [m.json()["job_id"] for m in replayed] == [*job_ids[1:], job_ids[0]]
        # and it goes on live after the replay
        call(server, "PATCH", f"/api/scheduler/jobs/{job_ids[0]}/resume")
        live = resumed.next()
        assert (live.event, live.json()["job_id"]) == ("job_resumed", job_ids[0])
        assert number(live) > number(replayed[-1]) > number(first)
    # every event of the hub in between, unfiltered, has consecutive numbers
    assert first.id is not None
    with SseStream(server.port, PATH, None, {"Last-Event-ID": first.id}) as unfiltered:
        numbers = [number(unfiltered.next()) for _ in range(7)]
        assert numbers == list(range(number(first) + 1, number(first) + 8))


def test_an_unknown_or_too_old_id_says_there_is_a_gap(server: ThreadServer) -> None:
    with SseStream(server.port, PATH, {"job_id": "gap-job"}, {"Last-Event-ID": "0bad-1"}) as s:
        gap = s.next()
        assert gap.event == "gap"
        assert gap.json()["last_event_id"] == "0bad-1"


def test_a_stalled_client_is_dropped_and_fires_stay_on_time(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, events_client_queue=20, sse_heartbeat=30.0)
    with running_server(settings) as server:
        scheduler = server.app.ctx.scheduler
        hub = server.app.ctx.event_hub
        ticker = scheduler.add_job(
            Job(
                id="ticker",
                name="ticker",
                kind=JobKind.CLASS,
                target="jobs.echo.EchoJob",
                trigger=IntervalTrigger(
                    seconds=0.1, start_date=datetime.now(UTC) + timedelta(seconds=0.2)
                ),
            )
        ).result(10)
        assert ticker.next_run_time is not None
        # a client that reads nothing, with a small receive window
        stalled = SseStream(server.port, PATH, read=False, receive_buffer=4096)
        with stalled, SseStream(server.port, PATH, {"job_id": "ticker"}) as watcher:
            wait_for(lambda: hub.client_count == 2, 5, "two clients")
            bulk = "x" * 4000  # each job_added event carries its description
            far = DateTrigger(datetime(2099, 1, 1, tzinfo=UTC))
            began = time.monotonic()
            # in small batches, so the loop (which also applies the adds) stays free to
            # fire: what is measured is the stalled client, not a flood of commands
            for first in range(0, 3000, 100):
                futures = [
                    scheduler.add_job(
                        Job(
                            id=f"bulk-{n}",
                            name="bulk",
                            kind=JobKind.CLASS,
                            target="jobs.echo.EchoJob",
                            trigger=far,
                            description=bulk,
                        )
                    )
                    for n in range(first, first + 100)
                ]
                for future in futures:
                    future.result(30)
                time.sleep(0.05)
            wait_for(lambda: hub.dropped_clients >= 1, 20, "the stalled client to be dropped")
            dropped_after = time.monotonic() - began
            # what the stalled client reads now (within Sanic's close grace) ends with
            # the final `dropped` event, and then the server closes the connection
            tail = _drain(stalled)
            assert b"event: dropped" in tail[-2000:], tail[-300:]
            assert tail.endswith(b"0\r\n\r\n")  # the chunked body was ended properly
            # the watcher (reading) was not dropped and still hears the ticker
            ticks = watcher.until("execution_completed", 5)
            assert ticks[-1].json()["job_id"] == "ticker"
            assert hub.client_count == 1
            time.sleep(0.5)
            scheduler.remove_job("ticker").result(10)
        lateness = [
            (e.started_at - e.scheduled_for).total_seconds()
            for e in server.app.ctx.store.list_executions(job_id="ticker", limit=1000)
            if e.started_at is not None and e.scheduled_for is not None
        ]
        assert len(lateness) >= 5, lateness
        # A loop or bus held by the stalled client would hold fires until its drop,
        # 2-3 s into the adds (dropped_after): so the bound is a fraction of that, not
        # the 0.1 s this test once asserted, which the OS alone exceeded (130-380 ms) on
        # a loaded 2-core machine whatever the tree. Typical fires stay prompt.
        worst, typical = max(lateness), sorted(lateness)[len(lateness) // 2]
        assert worst < min(0.5, dropped_after / 3), (sorted(lateness)[-5:], dropped_after)
        assert typical < 0.1, (typical, dropped_after)


def _drain(stream: SseStream) -> bytes:
    """Everything the server sent to a client that read nothing until now."""
    stream.sock.settimeout(10)
    received = bytearray()
    while True:
        try:
            chunk = stream.sock.recv(1 << 20)
        except TimeoutError:
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)


def test_the_ring_keeps_no_output() -> None:
    """Ended runs carry their output on the engine's events; the hub's ring of 10,000
    must not hold 10,000 outputs."""
    from api.event_hub import EventHub
    from engine.events import EXECUTION_EXECUTED, Event
    from engine.model import Execution, Status

    hub = EventHub(window=3)
    for n in range(5):
        execution = Execution(
            id=f"e{n}",
            job_id="j",
            status=Status.COMPLETED,
            created_at=datetime.now(UTC),
            output="x" * 10_000,
        )
        hub.on_event(Event(EXECUTION_EXECUTED, "j", datetime.now(UTC), execution=execution))
        assert execution.output == "x" * 10_000  # the other listeners' snapshot is untouched
    kept = list(hub._ring)
    assert [item.number for item in kept] == [3, 4, 5]
    assert all(item.event.execution is not None for item in kept)
    assert all(item.event.execution.output == "" for item in kept)  # type: ignore[union-attr]


def test_events_no_client_wants_wake_nobody() -> None:
    """Clients watching a quiet job cost the engine's events nothing: nothing is queued
    for the event loop, which is never woken."""
    from api.event_hub import EventHub
    from engine.events import JOB_ADDED, Event

    woken: list[object] = []

    class Loop:
        def call_soon_threadsafe(self, callback: object) -> None:
            woken.append(callback)

        def call_later(self, delay: float, callback: object) -> None:
            """The hub ends a departed client's linger so (not a wake-up)."""

    hub = EventHub()
    hub.attach(Loop())  # type: ignore[arg-type]
    job = Job(
        id="busy",
        name="b",
        kind=JobKind.CLASS,
        target="x.Y",
        trigger=DateTrigger(datetime(2099, 1, 1, tzinfo=UTC)),
    )
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        quiet, _ = hub.subscribe("quiet", None, None)
        for _ in range(100):
            hub.on_event(Event(JOB_ADDED, "busy", datetime.now(UTC), job=job))
        assert woken == [] and hub._pending == []
        watcher, _ = hub.subscribe("busy", None, None)
        hub.on_event(Event(JOB_ADDED, "busy", datetime.now(UTC), job=job))
        assert len(woken) == 1 and len(hub._pending) == 1
        hub.unsubscribe(watcher)
        hub.unsubscribe(quiet)
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_a_quiet_stream_outlives_sanics_response_timeout(tmp_path: Path) -> None:
    """Sanic cancels a response that sent nothing for RESPONSE_TIMEOUT; heartbeats come
    at least twice as often, whatever CRONWELL_SSE_HEARTBEAT says."""
    server = ThreadServer(make_settings(tmp_path, sse_heartbeat=30.0))
    server.app.config.RESPONSE_TIMEOUT = 1
    server.start()
    try:
        with SseStream(server.port, PATH, {"job_id": "quiet-job"}) as stream:
            began = time.monotonic()
            beats = [stream.next(3, skip_comments=False) for _ in range(5)]
            assert all(beat.event == "comment" for beat in beats)
            assert time.monotonic() - began >= 2.0  # past two response timeouts
            assert not stream.closed.is_set()
    finally:
        server.stop()
