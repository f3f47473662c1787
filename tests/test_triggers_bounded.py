"""BoundedTrigger: windows (start_date, end_date) and jitter around date, cron and
interval triggers; storage, equality, and the bounds jitter keeps."""

from __future__ import annotations

import copy
import itertools
import json
import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import TriggerError
from engine.triggers import (
    BoundedTrigger,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    Trigger,
    trigger_from_dict,
)
from engine.triggers.bounded import next_run

T = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def runs(trigger: BoundedTrigger, after: datetime, count: int) -> list[tuple[datetime, datetime]]:
    """The next `count` (occurrence, fire) pairs, each asked for after the previous fire."""
    found = []
    for _ in range(count):
        run = trigger.next_run(after)
        assert run is not None
        found.append(run)
        after = run[1]
    return found


# -- windows ---------------------------------------------------------------------------


def test_a_window_keeps_only_the_fires_inside_it_inclusive() -> None:
    hourly = CronTrigger(minute="0")
    window = BoundedTrigger(hourly, start_date=at(3 * 3600), end_date=at(6 * 3600))
    assert window.next_fire_time(T) == at(3 * 3600)  # the start itself fires
    assert window.next_fire_time(at(5 * 3600)) == at(6 * 3600)  # so does the end
    assert window.next_fire_time(at(6 * 3600)) is None
    assert (window.kind, window.timezone) == ("cron", "UTC")
    open_start = BoundedTrigger(hourly, end_date=at(2 * 3600 + 1))
    assert open_start.next_fire_time(T) == at(3600)
    assert open_start.next_fire_time(at(2 * 3600)) is None
    open_end = BoundedTrigger(hourly, start_date=at(90 * 60))
    assert open_end.next_fire_time(T) == at(2 * 3600)


def test_an_interval_keeps_its_phase_inside_a_window() -> None:
    every_ten = IntervalTrigger(minutes=10, start_date=at(0))
    window = BoundedTrigger(every_ten, start_date=at(25 * 60), end_date=at(55 * 60))
    fires = []
    fire = window.next_fire_time(T)
    while fire is not None:
        fires.append(fire)
        fire = window.next_fire_time(fire)
    assert fires == [at(30 * 60), at(40 * 60), at(50 * 60)]


def test_a_date_must_fall_in_its_window() -> None:
    once = DateTrigger(at(100))
    assert BoundedTrigger(once, start_date=at(100), end_date=at(100)).next_fire_time(T) == at(100)
    with pytest.raises(TriggerError) as caught:
        BoundedTrigger(once, end_date=at(99))
    assert caught.value.field == "end_date" and "no fire time" in str(caught.value)
    with pytest.raises(TriggerError) as caught:
        BoundedTrigger(once, start_date=at(101))
    assert caught.value.field == "start_date"


def test_a_cron_expression_with_no_fire_in_its_window_is_refused() -> None:
    new_year = CronTrigger(minute="0", hour="0", day_of_month="1", month="1")
    with pytest.raises(TriggerError) as caught:
        BoundedTrigger(new_year, start_date=at(3600), end_date=at(86400 * 300))
    assert caught.value.field == "end_date"


def test_bad_bounds_name_their_field() -> None:
    hourly = CronTrigger(minute="0")
    cases: list[tuple[dict[str, object], str]] = [
        ({"start_date": at(10), "end_date": at(5)}, "end_date"),
        ({"start_date": datetime(2026, 1, 1)}, "start_date"),
        ({"end_date": "2026-01-01"}, "end_date"),
        ({"jitter": -1}, "jitter_seconds"),
        ({"jitter": float("inf")}, "jitter_seconds"),
        ({"jitter": True}, "jitter_seconds"),
        ({"jitter": "5"}, "jitter_seconds"),
        ({"seed": -1}, "jitter_seed"),
        ({"seed": 2**63}, "jitter_seed"),
    ]
    for kwargs, field in cases:
        with pytest.raises(TriggerError) as caught:
            BoundedTrigger(hourly, **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field, kwargs
    with pytest.raises(TriggerError):
        BoundedTrigger(BoundedTrigger(hourly, jitter=1))  # type: ignore[arg-type]


# -- jitter ------------------------------------------------------------------------------


def test_jitter_delays_each_fire_within_its_bound_and_before_the_next_occurrence() -> None:
    minutely = IntervalTrigger(seconds=60, start_date=T)
    trigger = BoundedTrigger(minutely, jitter=30, seed=7)
    pairs = runs(trigger, T - timedelta(seconds=1), 500)
    occurrences = [o for o, _ in pairs]
    assert occurrences == [at(60 * k) for k in range(500)]
    delays = [(fire - o).total_seconds() for o, fire in pairs]
    assert all(0 <= d < 30 for d in delays)
    assert len(set(delays)) > 490  # spread out, not one fixed offset
    assert min(delays) < 3 and max(delays) > 27  # and over the whole range
    fires = [fire for _, fire in pairs]
    assert fires == sorted(fires)


def test_jitter_longer_than_the_gap_stops_before_the_next_occurrence() -> None:
    minutely = IntervalTrigger(seconds=60, start_date=T)
    trigger = BoundedTrigger(minutely, jitter=3600, seed=11)
    pairs = runs(trigger, T - timedelta(seconds=1), 300)
    for (occurrence, fire), (following, _) in itertools.pairwise(pairs):
        assert occurrence <= fire < following
    assert max((fire - o).total_seconds() for o, fire in pairs) > 50


def test_jitter_never_passes_the_end_date() -> None:
    hourly = CronTrigger(minute="0")
    trigger = BoundedTrigger(hourly, end_date=at(3 * 3600 + 5), jitter=1800, seed=3)
    pairs = runs(trigger, T - timedelta(seconds=1), 4)
    assert [o for o, _ in pairs] == [T, at(3600), at(7200), at(10800)]
    last_occurrence, last_fire = pairs[-1]
    assert last_occurrence <= last_fire < at(3 * 3600 + 5)
    assert trigger.next_run(last_fire) is None
    assert trigger.delay_bound(at(10800)) == timedelta(seconds=5)


def test_a_date_with_jitter_fires_once_within_it() -> None:
    trigger = BoundedTrigger(DateTrigger(at(100)), jitter=20, seed=5)
    run = trigger.next_run(T)
    assert run is not None
    occurrence, fire = run
    assert occurrence == at(100) and at(100) <= fire < at(120)
    assert trigger.next_fire_time(fire) is None
    assert trigger.next_fire_time(fire - timedelta(microseconds=1)) == fire


def test_the_same_question_always_gets_the_same_answer() -> None:
    """Asked from anywhere, the answer is the first of the one sequence of fires after it."""
    every_ten = IntervalTrigger(seconds=10, start_date=T)
    trigger = BoundedTrigger(every_ten, jitter=25, seed=99)  # jitter spans several gaps
    fires = [fire for _, fire in runs(trigger, T - timedelta(seconds=1), 200)]
    chooser = random.Random(1)
    for _ in range(300):
        after = at(chooser.uniform(0, 1900))
        expected = min(f for f in fires if f > after)
        assert trigger.next_fire_time(after) == expected
        assert trigger.next_fire_time(after) == expected  # again: deterministic


def test_many_occurrences_inside_the_jitter_are_found_by_bisection() -> None:
    every_second = IntervalTrigger(seconds=1, start_date=T)
    trigger = BoundedTrigger(every_second, jitter=86400, seed=4)
    fires = [fire for _, fire in runs(trigger, T - timedelta(seconds=1), 50)]
    for earlier, later in itertools.pairwise(fires):
        assert trigger.next_fire_time(earlier) == later
        middle = earlier + (later - earlier) / 2
        assert trigger.next_fire_time(middle) == later


def test_seeds_spread_jobs_on_one_schedule() -> None:
    hourly = CronTrigger(minute="0")
    firsts = {BoundedTrigger(hourly, jitter=600).next_fire_time(T) for _ in range(20)}
    assert len(firsts) > 15  # each new trigger draws its own seed
    one, other = (
        BoundedTrigger(hourly, jitter=600, seed=1),
        BoundedTrigger(hourly, jitter=600, seed=2),
    )
    assert one.next_fire_time(T) != other.next_fire_time(T)
    assert one != other and one == BoundedTrigger(hourly, jitter=600, seed=1)


def test_next_run_of_a_plain_trigger_is_its_fire_twice() -> None:
    assert next_run(CronTrigger(minute="0"), T) == (at(3600), at(3600))
    assert next_run(DateTrigger(at(5)), at(5)) is None


# -- storage and values -------------------------------------------------------------------


@pytest.mark.parametrize(
    "inner",
    [
        CronTrigger(second="30", minute="*/5", timezone="Europe/Berlin"),
        IntervalTrigger(seconds=90, start_date=T, timezone="Europe/Berlin"),
        DateTrigger(at(3600), timezone="Europe/Berlin"),
    ],
)
def test_round_trips_as_the_inner_kind_with_bound_keys(inner: Trigger) -> None:
    trigger = BoundedTrigger(inner, start_date=at(0), end_date=at(86400), jitter=12.5, seed=42)
    data = json.loads(json.dumps(trigger.to_dict()))
    assert data["kind"] == inner.kind
    assert data["window_start"] == at(0).isoformat() and data["window_end"] == at(86400).isoformat()
    assert (data["jitter_seconds"], data["jitter_seed"]) == (12.5, 42)
    rebuilt = trigger_from_dict(data)
    assert rebuilt == trigger and hash(rebuilt) == hash(trigger)
    assert rebuilt.next_fire_time(T) == trigger.next_fire_time(T)
    assert trigger_from_dict(data) is rebuilt  # rebuilt once, then shared like the others
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert copy.deepcopy(trigger) == trigger
    assert isinstance(trigger, Trigger)


def test_a_stored_window_that_has_passed_still_loads() -> None:
    data = {
        **DateTrigger(at(10)).to_dict(),
        "window_start": None,
        "window_end": at(5).isoformat(),
        "jitter_seconds": 0,
        "jitter_seed": 1,
    }
    assert trigger_from_dict(data).next_fire_time(T) is None


def test_bound_keys_that_bound_nothing_give_the_inner_trigger() -> None:
    data = {**CronTrigger(minute="0").to_dict(), "window_start": None, "jitter_seconds": 0}
    assert trigger_from_dict(data) == CronTrigger(minute="0")


def test_immutable_and_described() -> None:
    trigger = BoundedTrigger(
        CronTrigger(minute="0", hour="9", timezone="Europe/Berlin"),
        start_date=at(0),
        end_date=datetime(2026, 7, 1, tzinfo=UTC),
        jitter=30,
        seed=1,
    )
    with pytest.raises(AttributeError):
        trigger.jitter = 5  # type: ignore[misc]
    assert trigger.describe() == (
        "cron[minute='0', hour='9', day_of_month='*', month='*', day_of_week='*', week='*', "
        "start_date='2026-01-01 01:00:00 CET', end_date='2026-07-01 02:00:00 CEST', jitter=30]"
    )
    assert BoundedTrigger(DateTrigger(at(60)), jitter=5, seed=1).describe() == (
        "date[2026-01-01 00:01:00 UTC, jitter=5]"
    )
