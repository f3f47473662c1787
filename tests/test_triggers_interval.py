"""IntervalTrigger: start + k * interval, strictly after `after`, never past end_date."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.errors import TriggerError
from engine.triggers import IntervalTrigger, Trigger, trigger_from_dict

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_first_fire_is_the_start_then_every_interval() -> None:
    trigger = IntervalTrigger(minutes=5, start_date=START)
    assert trigger.next_fire_time(START - timedelta(hours=1)) == START
    assert trigger.next_fire_time(START) == START + timedelta(minutes=5)
    assert trigger.next_fire_time(START + timedelta(minutes=4, seconds=59)) == (
        START + timedelta(minutes=5)
    )
    assert trigger.next_fire_time(START + timedelta(minutes=5)) == START + timedelta(minutes=10)


def test_phase_is_kept_from_the_start_however_late_after_is() -> None:
    trigger = IntervalTrigger(seconds=7, start_date=START + timedelta(microseconds=250))
    after = START + timedelta(days=400, seconds=3)
    fire = trigger.next_fire_time(after)
    assert fire is not None and fire > after and fire - after <= timedelta(seconds=7)
    assert (fire - trigger.start_date) % timedelta(seconds=7) == timedelta(0)  # type: ignore[operator]


def test_units_add_up() -> None:
    trigger = IntervalTrigger(weeks=1, days=1, hours=1, minutes=1, seconds=1.5, start_date=START)
    assert trigger.interval == timedelta(days=8, hours=1, minutes=1, seconds=1.5)
    assert trigger.next_fire_time(START) == START + trigger.interval


def test_never_fires_after_end_date() -> None:
    end = START + timedelta(minutes=12)
    trigger = IntervalTrigger(minutes=5, start_date=START, end_date=end)
    assert trigger.next_fire_time(START + timedelta(minutes=5)) == START + timedelta(minutes=10)
    assert trigger.next_fire_time(START + timedelta(minutes=10)) is None
    on_the_end = IntervalTrigger(minutes=6, start_date=START, end_date=end)
    assert on_the_end.next_fire_time(START + timedelta(minutes=6)) == end


def test_real_time_across_dst_and_returned_in_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    start = datetime(2025, 3, 9, 0, 30, tzinfo=new_york)
    trigger = IntervalTrigger(hours=1, start_date=start, timezone="America/New_York")
    fires = []
    after = start
    for _ in range(4):
        fire = trigger.next_fire_time(after)
        assert fire is not None and fire.tzinfo is UTC
        fires.append(fire)
        after = fire
    assert [b - a for a, b in itertools.pairwise(fires)] == [timedelta(hours=1)] * 3


def test_start_date_defaults_to_the_creation_instant() -> None:
    before = datetime.now(UTC)
    trigger = IntervalTrigger(seconds=30)
    assert trigger.start_date is not None
    assert before <= trigger.start_date <= datetime.now(UTC)


def test_describe_like_apscheduler() -> None:
    assert IntervalTrigger(minutes=5, start_date=START).describe() == "interval[0:05:00]"
    assert IntervalTrigger(days=2, hours=3, start_date=START).describe() == (
        "interval[2 days, 3:00:00]"
    )


def test_round_trips_through_json_and_trigger_from_dict() -> None:
    trigger = IntervalTrigger(
        hours=2,
        seconds=30,
        start_date=START,
        end_date=START + timedelta(days=3),
        timezone="Europe/Berlin",
    )
    data = json.loads(json.dumps(trigger.to_dict()))
    assert data["kind"] == "interval"
    again = trigger_from_dict(data)
    assert again == trigger and isinstance(again, Trigger)
    assert again.next_fire_time(START) == trigger.next_fire_time(START)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "interval"),
        ({"seconds": 0, "minutes": 0}, "interval"),
        ({"minutes": -5}, "minutes"),
        ({"hours": float("nan")}, "hours"),
        ({"days": float("inf")}, "days"),
        ({"seconds": "10"}, "seconds"),
        ({"weeks": True}, "weeks"),
        ({"minutes": 1, "start_date": datetime(2025, 1, 1)}, "start_date"),
        ({"minutes": 1, "start_date": START, "end_date": datetime(2025, 5, 1)}, "end_date"),
        ({"minutes": 1, "start_date": START, "end_date": START - timedelta(1)}, "end_date"),
        ({"minutes": 1, "start_date": START, "timezone": "Nowhere/City"}, "timezone"),
    ],
)
def test_invalid_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(TriggerError) as caught:
        IntervalTrigger(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_start_date_is_required_in_a_dict() -> None:
    with pytest.raises(TriggerError) as caught:
        trigger_from_dict({"kind": "interval", "minutes": 5})
    assert caught.value.field == "start_date"


def test_is_immutable() -> None:
    trigger = IntervalTrigger(minutes=5, start_date=START)
    with pytest.raises(AttributeError):
        trigger.minutes = 10  # type: ignore[misc]
