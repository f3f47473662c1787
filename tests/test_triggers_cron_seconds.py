"""CronTrigger's optional `second` field: six-field crontab lines (seconds first), fires
between whole minutes, storage that leaves five-field triggers as they were, and the
DST rule at second resolution."""

from __future__ import annotations

import itertools
import json
import pickle
import time
from datetime import datetime, timedelta

import pytest

from engine.errors import TriggerError
from engine.triggers import CronTrigger, trigger_from_dict
from tests.test_triggers_cron import fires, fires_until, local, utc


def test_six_fields_put_the_second_first() -> None:
    every_ten = CronTrigger.from_crontab("*/10 * * * * *")
    assert every_ten.second == "*/10" and every_ten.minute == "*"
    assert fires(every_ten, utc(2025, 1, 1, 0, 0, 0), 3) == [
        utc(2025, 1, 1, 0, 0, 10),
        utc(2025, 1, 1, 0, 0, 20),
        utc(2025, 1, 1, 0, 0, 30),
    ]
    half_past_nine = CronTrigger.from_crontab("30 0 9 * * *")
    assert fires(half_past_nine, utc(2025, 1, 1, 9, 0, 30), 2) == [
        utc(2025, 1, 2, 9, 0, 30),
        utc(2025, 1, 3, 9, 0, 30),
    ]


def test_strictly_after_at_second_resolution() -> None:
    trigger = CronTrigger.from_crontab("15,45 * * * * *")
    assert trigger.next_fire_time(utc(2025, 1, 1, 0, 0, 15)) == utc(2025, 1, 1, 0, 0, 45)
    just_before = datetime(2025, 1, 1, 0, 0, 14, 999999, tzinfo=utc(2025, 1, 1).tzinfo)
    assert trigger.next_fire_time(just_before) == utc(2025, 1, 1, 0, 0, 15)
    assert trigger.next_fire_time(utc(2025, 12, 31, 23, 59, 45)) == utc(2026, 1, 1, 0, 0, 15)


def test_five_field_triggers_store_and_show_as_before() -> None:
    five = CronTrigger.from_crontab("0 9 * * *")
    assert five.second == "0"
    assert "second" not in five.to_dict()
    assert five.describe().startswith("cron[minute='0', hour='9'")
    assert five == CronTrigger.from_crontab("0 0 9 * * *")  # an explicit 0 is the same


def test_a_seconds_trigger_round_trips() -> None:
    trigger = CronTrigger.from_crontab("*/15 0 9 * * mon", timezone="Europe/Berlin")
    data = json.loads(json.dumps(trigger.to_dict()))
    assert data["second"] == "*/15" and data["minute"] == "0" and data["day_of_week"] == "mon"
    assert trigger_from_dict(data) == trigger
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert trigger.describe() == (
        "cron[second='*/15', minute='0', hour='9', day_of_month='*', month='*', "
        "day_of_week='mon', week='*']"
    )
    assert trigger != CronTrigger.from_crontab("0 9 * * mon", timezone="Europe/Berlin")


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ("60", "invalid second: 60 is out of range 0-59"),
        ("*/0", "invalid second: step '0' in '*/0' must be a whole number >= 1"),
        ("*/60", "invalid second: step 60 in '*/60' is larger than the range 0-59"),
        ("x", "invalid second: 'x' is not a valid second"),
        ("", "invalid second: is empty"),
    ],
)
def test_bad_second_fields_are_named(second: str, message: str) -> None:
    with pytest.raises(TriggerError) as caught:
        CronTrigger(second=second)
    assert caught.value.field == "second"
    assert str(caught.value).startswith(message)


def test_an_equal_second_range_is_that_second() -> None:
    trigger = CronTrigger(second="5-5")
    assert fires(trigger, utc(2025, 1, 1), 2) == [
        utc(2025, 1, 1, 0, 0, 5),
        utc(2025, 1, 1, 0, 1, 5),
    ]


def test_berlin_spring_forward_with_seconds() -> None:
    zone = "Europe/Berlin"  # 2025-03-30 02:00 CET -> 03:00 CEST (01:00Z)
    fixed = CronTrigger.from_crontab("15,45 30 2 * * *", timezone=zone)
    assert local(fires(fixed, utc(2025, 3, 29, 12), 3), zone) == [
        "03-30 03:00 CEST",  # both seconds of 02:30 fell in the gap: once, at the jump
        "03-31 02:30 CEST",
        "03-31 02:30 CEST",
    ]
    assert fires(fixed, utc(2025, 3, 30, 12), 2) == [
        utc(2025, 3, 31, 0, 30, 15),
        utc(2025, 3, 31, 0, 30, 45),
    ]
    wildcard = CronTrigger.from_crontab("*/20 * * * * *", timezone=zone)
    around = fires_until(wildcard, utc(2025, 3, 30, 0, 59, 0), utc(2025, 3, 30, 1, 1, 0))
    assert all(b - a == timedelta(seconds=20) for a, b in itertools.pairwise(around))
    # real time straight through the jump (01:59:40 CET is followed by 03:00:00 CEST)
    assert around[0] == utc(2025, 3, 30, 0, 59, 20) and len(around) == 5
    assert local(around[1:3], zone) == ["03-30 01:59 CET", "03-30 03:00 CEST"]


def test_berlin_fall_back_with_seconds() -> None:
    zone = "Europe/Berlin"  # 2025-10-26 03:00 CEST -> 02:00 CET (01:00Z)
    fixed = CronTrigger.from_crontab("30 30 2 * * *", timezone=zone)
    assert local(fires(fixed, utc(2025, 10, 25, 12), 2), zone) == [
        "10-26 02:30 CEST",  # the first pass only
        "10-27 02:30 CET",
    ]
    wildcard = CronTrigger.from_crontab("0 */30 2 * * *", timezone=zone)
    assert local(fires(wildcard, utc(2025, 10, 25, 23, 45), 4), zone) == [
        "10-26 02:00 CEST",
        "10-26 02:30 CEST",
        "10-26 02:00 CET",
        "10-26 02:30 CET",
    ]


def test_next_fire_time_with_seconds_is_cheap() -> None:
    trigger = CronTrigger.from_crontab("*/5 * 9-17 * * 1-5", timezone="America/New_York")
    after = utc(2025, 6, 4, 14, 17, 3)
    started = time.perf_counter()
    for _ in range(5000):
        trigger.next_fire_time(after)
    assert (time.perf_counter() - started) / 5000 < 100e-6
