"""The event loop gives way to a fire's start within a share of its time
(api/give_way.py), and the protocol asks it before each chunk of a request it reads.
A hand-set clock for the budget; the waits are real and short; the protocol's part
on a real server on loopback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from api.give_way import CREDIT_CAP, GiveWay
from engine.running.wakes import ArmedWakes
from tests.api_support import make_settings, running_server
from tests.engine_support import HandClock

WAIT = 5.0


def test_nothing_expected_costs_no_wait_and_no_credit() -> None:
    clock = HandClock()
    give_way = GiveWay(ArmedWakes(clock), clock=clock)
    give_way()
    assert give_way.credit == CREDIT_CAP


def test_it_waits_for_a_start_due_within_its_work_and_spends_the_wait() -> None:
    wakes = ArmedWakes(time.time)
    give_way = GiveWay(wakes, work=1.0)  # the real monotonic clock: the wait is measured
    token = wakes.expect_start(time.time() + 0.5)
    threading.Timer(0.02, lambda: wakes.started(token)).start()
    began = time.monotonic()
    give_way()
    waited = time.monotonic() - began
    assert 0.015 < waited < 0.45  # until the start, not until its due time
    assert give_way.credit < CREDIT_CAP - 0.015


def test_without_credit_it_does_not_wait() -> None:
    wakes = ArmedWakes(time.time)
    give_way = GiveWay(wakes, share=0.0, work=1.0)
    token = wakes.expect_start(time.time() + 0.5)
    give_way()  # the first wait spends the whole credit it starts with
    assert give_way.credit <= 0.0
    began = time.monotonic()
    give_way()
    assert time.monotonic() - began < 0.25  # no credit: requests go first
    wakes.started(token)


def test_credit_comes_back_at_its_share_of_the_time_and_no_more_than_the_cap() -> None:
    clock = HandClock()
    wakes = ArmedWakes(clock)
    give_way = GiveWay(wakes, share=0.2, work=0.0, clock=clock)
    give_way._credit = -0.01  # as after waits beyond its share
    wakes.expect_start(clock.now + 10.0)  # expected, though not within the work
    clock.now += 0.01
    give_way()
    assert abs(give_way.credit - (-0.01 + 0.002)) < 1e-9
    clock.now += 100.0
    give_way()
    assert give_way.credit == CREDIT_CAP


def test_the_server_asks_it_before_reading_each_request(tmp_path: Path) -> None:
    with running_server(make_settings(tmp_path)) as server:
        ctx = server.app.ctx
        assert isinstance(ctx.give_way, GiveWay)  # the engine's, set at start
        assert ctx.give_way._wakes is ctx.scheduler.wakes
        asked: list[int] = []
        real = ctx.give_way
        ctx.give_way = lambda: (asked.append(1), real())  # read by each new connection
        with requests.Session() as session:
            for _ in range(3):
                assert session.get(f"{server.url}/api/health", timeout=WAIT).status_code == 200
        assert len(asked) >= 3
