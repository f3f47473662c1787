"""Pure scheduling policy: first fire, misfire grace, coalescing, capped walks, retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import InvalidInput
from engine.model import Status
from engine.scheduling.policy import first_fire_time, plan_fires, retry_delay, should_retry
from tests.engine_support import T0, date_at, every


def at(seconds: float) -> object:
    return T0 + timedelta(seconds=seconds)


def test_nothing_due_keeps_the_fire_time() -> None:
    plan = plan_fires(every(60), T0 + timedelta(seconds=60), T0, grace=10, coalesce=True)
    assert plan.runs == () and plan.missed == ()
    assert plan.next_run_time == at(60)


def test_on_time_fire_runs_and_next_is_after_now() -> None:
    plan = plan_fires(every(60), T0, T0 + timedelta(seconds=5), grace=10, coalesce=False)
    assert plan.runs == (T0,)
    assert plan.missed == ()
    assert plan.next_run_time == at(60)
    assert plan.note == ""


def test_late_fire_beyond_grace_is_missed_with_how_late() -> None:
    plan = plan_fires(date_at(T0), T0, T0 + timedelta(seconds=125), grace=60, coalesce=False)
    assert plan.runs == ()
    ((fire, error),) = plan.missed
    assert fire == T0
    assert "125.000 s late" in error and "misfire_grace_time 60 s" in error
    assert plan.next_run_time is None


def test_without_coalesce_every_fire_is_accounted_for() -> None:
    # due at 0, now at 300: fires 0..300 every 60 s; grace 100 -> 0,60,120,180 late
    plan = plan_fires(every(60), T0, T0 + timedelta(seconds=300), grace=100, coalesce=False)
    assert [t for t, _ in plan.missed] == [at(0), at(60), at(120), at(180)]
    assert plan.runs == (at(240), at(300))
    assert plan.next_run_time == at(360)


def test_coalesce_runs_the_latest_once_and_notes_the_count() -> None:
    plan = plan_fires(every(60), T0, T0 + timedelta(seconds=300), grace=100, coalesce=True)
    assert plan.runs == (at(300),)
    assert plan.missed == ()
    assert plan.note.startswith("[cronwell] coalesced 6 fire times")
    assert plan.next_run_time == at(360)


def test_coalesce_all_late_gives_one_missed_record() -> None:
    plan = plan_fires(every(60), T0, T0 + timedelta(seconds=330), grace=10, coalesce=True)
    assert plan.runs == ()
    ((fire, error),) = plan.missed
    assert fire == at(300)
    assert "coalesced 6 missed fire times" in error


def test_no_grace_limit_runs_however_late() -> None:
    plan = plan_fires(date_at(T0), T0, T0 + timedelta(days=400), grace=None, coalesce=True)
    assert plan.runs == (T0,)


def test_walk_is_capped_and_says_more_than() -> None:
    now = T0 + timedelta(days=30)  # 2.6 million one-second fires
    plan = plan_fires(every(1), T0, now, grace=5, coalesce=True, cap=100)
    assert plan.runs == (now,)  # the jump still finds the on-time fires
    assert "coalesced more than 106 fire times" in plan.note
    assert plan.next_run_time == now + timedelta(seconds=1)
    plan = plan_fires(every(1), T0, now, grace=5, coalesce=False, cap=100)
    assert len(plan.missed) == 100
    assert "more than 100 fire times were missed" in plan.missed[-1][1]
    assert len(plan.runs) == 6


def test_first_fire_time_includes_now_and_past_dates() -> None:
    assert first_fire_time(every(60), T0) == T0
    assert first_fire_time(every(60), at(1)) == at(60)
    past = date_at(T0)
    assert first_fire_time(past, at(3600)) == T0  # due at once; misfire decides
    assert first_fire_time(past, at(3600), last_run_time=T0) is None  # already fired


def test_retry_rules() -> None:
    assert should_retry(Status.FAILED, attempt=1, retries=2)
    assert should_retry(Status.TIMEOUT, attempt=2, retries=2)
    assert not should_retry(Status.FAILED, attempt=3, retries=2)
    assert not should_retry(Status.CANCELLED, attempt=1, retries=2)
    assert [retry_delay(10, "fixed", n) for n in (1, 2, 3)] == [10, 10, 10]
    assert [retry_delay(10, "exponential", n) for n in (1, 2, 3)] == [10, 20, 40]
    assert retry_delay(10, "exponential", 10_000) == 365 * 24 * 3600.0
    with pytest.raises(InvalidInput, match="retry_backoff"):
        retry_delay(10, "linear", 1)
