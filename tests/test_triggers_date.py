"""DateTrigger: one fire, shown the way the scripts surface shows it, and read back from dicts."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.errors import TriggerError
from engine.triggers import DateTrigger, Trigger, trigger_from_dict

RUN = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_fires_once_strictly_after() -> None:
    trigger = DateTrigger(RUN)
    assert trigger.next_fire_time(RUN - timedelta(days=1)) == RUN
    assert trigger.next_fire_time(RUN - timedelta(microseconds=1)) == RUN
    assert trigger.next_fire_time(RUN) is None
    assert trigger.next_fire_time(RUN + timedelta(seconds=1)) is None


def test_run_date_is_kept_and_returned_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    trigger = DateTrigger(datetime(2025, 1, 1, 1, 59, 59, tzinfo=plus_two))
    assert trigger.run_date == RUN
    assert trigger.run_date.utcoffset() == timedelta(0)
    fire = trigger.next_fire_time(datetime(2024, 1, 1, tzinfo=plus_two))
    assert fire == RUN and fire is not None and fire.tzinfo is UTC


def test_describe_matches_the_scripts_seed() -> None:
    assert DateTrigger(RUN).describe() == "date[2024-12-31 23:59:59 UTC]"
    assert DateTrigger(RUN, timezone="America/New_York").describe() == (
        "date[2024-12-31 18:59:59 EST]"
    )
    assert DateTrigger(RUN, timezone="Europe/Berlin").describe() == "date[2025-01-01 00:59:59 CET]"


def test_round_trips_through_json_and_trigger_from_dict() -> None:
    trigger = DateTrigger(RUN, timezone="Europe/Berlin")
    data = json.loads(json.dumps(trigger.to_dict()))
    assert data["kind"] == "date"
    again = trigger_from_dict(data)
    assert again == trigger
    assert isinstance(again, DateTrigger) and isinstance(again, Trigger)


def test_is_immutable() -> None:
    trigger = DateTrigger(RUN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        trigger.run_date = RUN + timedelta(days=1)  # type: ignore[misc]
    assert not hasattr(trigger, "__dict__")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"run_date": datetime(2024, 12, 31, 23, 59, 59)}, "run_date"),
        ({"run_date": "2024-12-31T23:59:59Z"}, "run_date"),
        ({"run_date": RUN, "timezone": "Mars/Olympus"}, "timezone"),
        ({"run_date": RUN, "timezone": ""}, "timezone"),
        ({"run_date": RUN, "timezone": "../etc/passwd"}, "timezone"),
    ],
)
def test_invalid_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(TriggerError) as caught:
        DateTrigger(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"invalid {field}: ")


def test_naive_after_is_refused() -> None:
    with pytest.raises(TriggerError) as caught:
        DateTrigger(RUN).next_fire_time(datetime(2024, 1, 1))
    assert caught.value.field == "after"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "date"}, "run_date"),
        ({"kind": "date", "run_date": "yesterday"}, "run_date"),
        ({"kind": "date", "run_date": "2024-12-31T23:59:59"}, "run_date"),
        ({"kind": "date", "run_date": RUN.isoformat(), "rundate": "x"}, "date"),
        ({"kind": "sometimes", "run_date": RUN.isoformat()}, "kind"),
        ({"run_date": RUN.isoformat()}, "kind"),
    ],
)
def test_bad_dicts_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(TriggerError) as caught:
        trigger_from_dict(data)
    assert caught.value.field == field


def test_from_dict_accepts_a_datetime_a_store_handed_back() -> None:
    assert trigger_from_dict({"kind": "date", "run_date": RUN}) == DateTrigger(RUN)


def test_rebuilding_one_stored_trigger_again_reuses_the_object() -> None:
    data = DateTrigger(datetime(2026, 5, 1, 9, 30, tzinfo=UTC), timezone="Europe/Paris").to_dict()
    first = trigger_from_dict(dict(data))
    assert trigger_from_dict(dict(data)) is first  # immutable, so shared
    other = dict(data, run_date="2026-05-02T09:30:00+00:00")
    assert trigger_from_dict(other) != first
    with pytest.raises(TriggerError):
        trigger_from_dict({**data, "extra": ["unhashable"]})  # refused, cached or not
