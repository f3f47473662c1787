"""CronTrigger: fields, day_of_week 0 = Sunday, the week filter, DST, Feb 29, bad input.

croniter is used here as an independent oracle: our walk must give the same fires as
`croniter.get_next` for the expressions both support (in UTC, where no DST rule applies).
"""

from __future__ import annotations

import copy
import itertools
import json
import pickle
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from engine.errors import TriggerError
from engine.triggers import CronTrigger, Trigger, trigger_from_dict


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc]


def fires(trigger: CronTrigger, after: datetime, count: int) -> list[datetime]:
    """The next `count` fires, each asked for strictly after the previous one."""
    found = []
    for _ in range(count):
        fire = trigger.next_fire_time(after)
        assert fire is not None and fire.tzinfo is UTC and fire > after
        found.append(fire)
        after = fire
    return found


def fires_until(trigger: CronTrigger, after: datetime, end: datetime) -> list[datetime]:
    found = []
    fire = trigger.next_fire_time(after)
    while fire is not None and fire < end:
        found.append(fire)
        fire = trigger.next_fire_time(fire)
    return found


def local(moments: list[datetime], zone: str) -> list[str]:
    return [m.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M %Z") for m in moments]


# -- fields, surface, values -------------------------------------------------------


def test_fields_describe_and_defaults() -> None:
    trigger = CronTrigger(minute="0", hour="9")
    assert trigger.describe() == (
        "cron[minute='0', hour='9', day_of_month='*', month='*', day_of_week='*', week='*']"
    )
    assert (trigger.minute, trigger.hour, trigger.day_of_month) == ("0", "9", "*")
    assert (trigger.month, trigger.day_of_week, trigger.week) == ("*", "*", "*")
    assert trigger.timezone == "UTC" and trigger.kind == "cron"
    assert isinstance(trigger, Trigger)


def test_seed_examples() -> None:
    after = utc(2025, 1, 1, 10, 0)  # a Wednesday
    assert CronTrigger(minute="0", hour="9").next_fire_time(after) == utc(2025, 1, 2, 9, 0)
    monday_3pm = CronTrigger(minute="0", hour="15", day_of_week="1")
    assert fires(monday_3pm, after, 2) == [utc(2025, 1, 6, 15), utc(2025, 1, 13, 15)]
    every_5 = CronTrigger(minute="*/5")
    assert fires(every_5, utc(2025, 1, 1, 10, 2, 30), 2) == [
        utc(2025, 1, 1, 10, 5),
        utc(2025, 1, 1, 10, 10),
    ]
    monthly = CronTrigger(minute="0", hour="0", day_of_month="1")
    assert monthly.next_fire_time(after) == utc(2025, 2, 1)


def test_strictly_after_and_whole_minutes() -> None:
    trigger = CronTrigger.from_crontab("30 * * * *")
    assert trigger.next_fire_time(utc(2025, 1, 1, 10, 30)) == utc(2025, 1, 1, 11, 30)
    just_before = datetime(2025, 1, 1, 10, 29, 59, 999999, tzinfo=UTC)
    assert trigger.next_fire_time(just_before) == utc(2025, 1, 1, 10, 30)
    assert trigger.next_fire_time(utc(2025, 12, 31, 23, 45)) == utc(2026, 1, 1, 0, 30)


def test_after_in_another_offset_is_the_same_instant() -> None:
    trigger = CronTrigger(minute="0", hour="12")
    tokyo_morning = datetime(2025, 6, 2, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 23:00Z on the 1st
    assert trigger.next_fire_time(tokyo_morning) == utc(2025, 6, 2, 12)


def test_day_of_week_zero_and_seven_are_sunday() -> None:
    after = utc(2025, 1, 1)  # Wednesday
    for spelling in ("0", "7", "sun", "SUN", 0):
        trigger = CronTrigger(minute="0", hour="0", day_of_week=spelling)
        fire = trigger.next_fire_time(after)
        assert fire == utc(2025, 1, 5), spelling
        assert fire.isoweekday() == 7
    weekdays = CronTrigger(minute="0", hour="6", day_of_week="mon-fri")
    assert {f.isoweekday() for f in fires(weekdays, after, 10)} == {1, 2, 3, 4, 5}
    saturday = CronTrigger(minute="0", hour="0", day_of_week="6")
    assert saturday.next_fire_time(after) == utc(2025, 1, 4)


def test_feb_29_waits_for_the_next_leap_year() -> None:
    trigger = CronTrigger.from_crontab("0 0 29 2 *")
    assert trigger.next_fire_time(utc(2025, 1, 1)) == utc(2028, 2, 29)
    assert fires(trigger, utc(2028, 2, 29), 2) == [utc(2032, 2, 29), utc(2036, 2, 29)]
    assert trigger.next_fire_time(utc(2096, 3, 1)) == utc(2104, 2, 29)  # 2100 is not leap


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    trigger = CronTrigger(minute="0", hour="0", day_of_month="1", day_of_week="1")
    days = fires(trigger, utc(2025, 1, 1), 6)  # the 1st, or any Monday
    assert days == [
        utc(2025, 1, 6),
        utc(2025, 1, 13),
        utc(2025, 1, 20),
        utc(2025, 1, 27),
        utc(2025, 2, 1),
        utc(2025, 2, 3),
    ]


def test_last_day_and_nth_weekday() -> None:
    last = CronTrigger(minute="0", hour="0", day_of_month="L")
    assert fires(last, utc(2024, 1, 31), 3) == [
        utc(2024, 2, 29),
        utc(2024, 3, 31),
        utc(2024, 4, 30),
    ]
    second_friday = CronTrigger(minute="0", hour="8", day_of_week="5#2")
    assert fires(second_friday, utc(2025, 1, 1), 2) == [utc(2025, 1, 10, 8), utc(2025, 2, 14, 8)]
    last_friday = CronTrigger(minute="0", hour="8", day_of_week="L5")
    assert fires(last_friday, utc(2025, 1, 1), 2) == [utc(2025, 1, 31, 8), utc(2025, 2, 28, 8)]


def test_week_filter_is_the_iso_week() -> None:
    odd_weeks = CronTrigger(minute="0", hour="0", day_of_week="mon", week="*/2")
    mondays = fires(odd_weeks, utc(2024, 12, 25), 4)
    assert [m.isocalendar().week for m in mondays] == [1, 3, 5, 7]
    assert mondays[0] == utc(2024, 12, 30)  # ISO week 1 of 2025 starts in 2024
    listed = CronTrigger(minute="0", hour="12", week="10,20-21")
    days = fires(listed, utc(2025, 1, 1), 21)
    assert {d.isocalendar().week for d in days} == {10, 20, 21}
    stepped = CronTrigger(minute="0", hour="0", day_of_week="1", week="40-52/5")
    assert [d.isocalendar().week for d in fires(stepped, utc(2025, 1, 1), 3)] == [40, 45, 50]
    week_53 = CronTrigger(minute="0", hour="0", day_of_week="4", week="53")
    assert week_53.next_fire_time(utc(2021, 1, 1)) == utc(2026, 12, 31)


def test_round_trip_equality_and_copies() -> None:
    trigger = CronTrigger(
        minute="*/15", hour="9-17", day_of_week="mon-fri", week="1-26", timezone="Europe/Berlin"
    )
    data = json.loads(json.dumps(trigger.to_dict()))
    assert data == {
        "kind": "cron",
        "minute": "*/15",
        "hour": "9-17",
        "day_of_month": "*",
        "month": "*",
        "day_of_week": "mon-fri",
        "week": "1-26",
        "timezone": "Europe/Berlin",
    }
    assert trigger_from_dict(data) == trigger
    assert hash(trigger_from_dict(data)) == hash(trigger)
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert copy.deepcopy(trigger) == trigger
    assert trigger != CronTrigger(minute="*/15", hour="9-17", day_of_week="mon-fri", week="1-26")
    assert CronTrigger(hour=9).hour == "9"


def test_from_crontab_and_nicknames() -> None:
    trigger = CronTrigger.from_crontab("*/5  9-17 * * 1-5", timezone="America/New_York")
    assert (trigger.minute, trigger.hour, trigger.day_of_week) == ("*/5", "9-17", "1-5")
    assert trigger.timezone == "America/New_York"
    assert CronTrigger.from_crontab("@daily") == CronTrigger.from_crontab("0 0 * * *")
    assert CronTrigger.from_crontab("@hourly").next_fire_time(utc(2025, 1, 1, 0, 1)) == utc(
        2025, 1, 1, 1
    )


def test_immutable_tiny_and_sharing_one_compiled_schedule() -> None:
    first = CronTrigger(minute="0", hour="9", timezone="Europe/Berlin")
    second = CronTrigger.from_dict(first.to_dict())
    assert first._schedule is second._schedule  # parsed once, shared
    assert first._schedule is CronTrigger(minute=0, hour=9, timezone="Europe/Berlin")._schedule
    assert not hasattr(first, "__dict__")
    with pytest.raises(AttributeError):
        first.minute = "5"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        first._schedule = second._schedule  # type: ignore[misc]


def test_last_possible_year_ends_the_schedule() -> None:
    trigger = CronTrigger(minute="0", hour="0")
    assert trigger.next_fire_time(utc(9999, 12, 31, 0, 0)) is None
    assert trigger.next_fire_time(utc(9999, 12, 30, 12, 0)) == utc(9999, 12, 31)


# -- croniter as an oracle ---------------------------------------------------------

ORACLE_EXPRESSIONS = [
    "*/5 * * * *",
    "0 9 * * 1-5",
    "15,45 */3 * * *",
    "0 0 1 * *",
    "0 12 * * 0",
    "0 12 * * 7",
    "30 6 13 * 5",
    "0 0 */2 * 1",
    "0 0 L * *",
    "0 8 * * 5#2",
    "0 0 29 2 *",
    "50-10 0 * * *",
    "0 0 * jan-mar,oct *",
    "0 22 * * sat,sun",
    "0 0 31 * *",
    "59 23 * 2 *",
    "7 4 1-7 * 2",
    "0 */4 15-20/2 */3 *",
    # six fields, seconds first
    "*/10 * * * * *",
    "0 */5 * * * *",
    "30 0 9 * * 1-5",
    "5-10 59 23 * * *",
    "*/7 30 * 2 * *",
    "0,30 0 0 L * *",
]


@pytest.mark.parametrize("expression", ORACLE_EXPRESSIONS)
def test_same_fires_as_croniter_in_utc(expression: str) -> None:
    start = utc(2024, 1, 1, 0, 0)
    reference = croniter(expression, start, second_at_beginning=len(expression.split()) == 6)
    expected = [reference.get_next(datetime) for _ in range(40)]
    assert fires(CronTrigger.from_crontab(expression), start, 40) == expected


# -- DST ---------------------------------------------------------------------------


def test_new_york_spring_forward() -> None:
    zone = "America/New_York"  # 2025-03-09 02:00 EST -> 03:00 EDT (07:00Z)
    day = (utc(2025, 3, 9, 5), utc(2025, 3, 10, 4))  # local midnight to midnight
    fixed = CronTrigger.from_crontab("30 2 * * *", timezone=zone)
    assert local(fires(fixed, utc(2025, 3, 8, 12), 3), zone) == [
        "03-09 03:00 EDT",  # 02:30 does not exist: once, when the clock jumps
        "03-10 02:30 EDT",
        "03-11 02:30 EDT",
    ]
    several_in_gap = CronTrigger.from_crontab("0,15,30,45 2 * * *", timezone=zone)
    assert local(fires_until(several_in_gap, day[0], day[1]), zone) == ["03-09 03:00 EDT"]
    hourly = CronTrigger.from_crontab("0 * * * *", timezone=zone)
    hours = fires_until(hourly, day[0] - timedelta(seconds=1), day[1])
    assert len(hours) == 23  # every real hour of a 23-hour day
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(hours))
    half_past = CronTrigger.from_crontab("30 * * * *", timezone=zone)  # wildcard: no 02:30
    assert local(fires(half_past, utc(2025, 3, 9, 6, 0), 2), zone) == [
        "03-09 01:30 EST",
        "03-09 03:30 EDT",
    ]


def test_new_york_fall_back() -> None:
    zone = "America/New_York"  # 2025-11-02 02:00 EDT -> 01:00 EST (06:00Z)
    day = (utc(2025, 11, 2, 4), utc(2025, 11, 3, 5))
    fixed = CronTrigger.from_crontab("30 1 * * *", timezone=zone)
    assert local(fires(fixed, utc(2025, 11, 1, 12), 3), zone) == [
        "11-02 01:30 EDT",  # 01:30 happens twice: fires at the first only
        "11-03 01:30 EST",
        "11-04 01:30 EST",
    ]
    hourly = CronTrigger.from_crontab("0 * * * *", timezone=zone)
    hours = fires_until(hourly, day[0] - timedelta(seconds=1), day[1])
    assert len(hours) == 25  # every real hour of a 25-hour day
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(hours))
    assert local(hours[1:4], zone) == ["11-02 01:00 EDT", "11-02 01:00 EST", "11-02 02:00 EST"]
    twenty = CronTrigger.from_crontab("*/20 * * * *", timezone=zone)
    first_pass = utc(2025, 11, 2, 5, 40)  # 01:40 EDT: the second pass is still to come
    assert local(fires(twenty, first_pass, 4), zone) == [
        "11-02 01:00 EST",
        "11-02 01:20 EST",
        "11-02 01:40 EST",
        "11-02 02:00 EST",
    ]
    second_pass = utc(2025, 11, 2, 6, 10)  # 01:10 EST: a fixed job already fired at 01:30 EDT
    assert fixed.next_fire_time(second_pass) == utc(2025, 11, 3, 6, 30)


def test_berlin_spring_forward_and_fall_back() -> None:
    zone = "Europe/Berlin"  # 2025-03-30 02:00 CET -> 03:00 CEST; 2025-10-26 03:00 CEST -> 02:00 CET
    fixed = CronTrigger.from_crontab("30 2 * * *", timezone=zone)
    assert local(fires(fixed, utc(2025, 3, 29, 12), 2), zone) == [
        "03-30 03:00 CEST",
        "03-31 02:30 CEST",
    ]
    assert local(fires(fixed, utc(2025, 10, 25, 12), 2), zone) == [
        "10-26 02:30 CEST",
        "10-27 02:30 CET",
    ]
    half_hourly = CronTrigger.from_crontab("*/30 * * * *", timezone=zone)
    assert local(fires(half_hourly, utc(2025, 3, 30, 0, 0), 3), zone) == [
        "03-30 01:30 CET",
        "03-30 03:00 CEST",
        "03-30 03:30 CEST",
    ]
    assert local(fires(half_hourly, utc(2025, 10, 25, 23, 45), 5), zone) == [
        "10-26 02:00 CEST",
        "10-26 02:30 CEST",
        "10-26 02:00 CET",
        "10-26 02:30 CET",
        "10-26 03:00 CET",
    ]
    # the local field reading holds away from transitions too
    nine = CronTrigger(minute="0", hour="9", timezone=zone)
    assert nine.next_fire_time(utc(2025, 1, 15, 12)) == utc(2025, 1, 16, 8)
    assert nine.next_fire_time(utc(2025, 7, 15, 12)) == utc(2025, 7, 16, 7)


# -- invalid input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"hour": "25"}, "hour", "invalid hour: 25 is out of range 0-23"),
        ({"minute": "60"}, "minute", "invalid minute: 60 is out of range 0-59"),
        ({"minute": "10-75"}, "minute", "invalid minute: 75 is out of range 0-59"),
        ({"day_of_month": "0"}, "day_of_month", "invalid day_of_month: 0 is out of range 1-31"),
        ({"day_of_month": "32"}, "day_of_month", "invalid day_of_month: 32 is out of range 1-31"),
        ({"month": "13"}, "month", "invalid month: 13 is out of range 1-12"),
        ({"day_of_week": "8"}, "day_of_week", "invalid day_of_week: 8 is out of range 0-7"),
        ({"week": "54"}, "week", "invalid week: 54 is out of range 1-53"),
        ({"week": "0"}, "week", "invalid week: 0 is out of range 1-53"),
        (
            {"minute": "*/0"},
            "minute",
            "invalid minute: step '0' in '*/0' must be a whole number >= 1",
        ),
        ({"week": "*/0"}, "week", "invalid week: step '0' in '*/0' must be a whole number >= 1"),
        ({"week": "20-10"}, "week", "invalid week: range '20-10' runs backwards"),
    ],
)
def test_out_of_range_and_bad_steps_have_clear_messages(
    kwargs: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(TriggerError) as caught:
        CronTrigger(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"minute": "abc"}, "minute"),
        ({"hour": "1,,2"}, "hour"),
        ({"day_of_month": "15W"}, "day_of_month"),
        ({"month": "smarch"}, "month"),
        ({"day_of_week": "funday"}, "day_of_week"),
        ({"day_of_week": "mon#6"}, "day_of_week"),
        ({"week": "odd"}, "week"),
        ({"week": "1-x"}, "week"),
        ({"minute": ""}, "minute"),
        ({"hour": "1, 2"}, "hour"),
        ({"hour": True}, "hour"),
        ({"hour": ["9"]}, "hour"),
        ({"minute": None}, "minute"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "America"}, "timezone"),
        ({"timezone": 5}, "timezone"),
        ({"day_of_month": "30", "month": "2"}, "day_of_month"),
        ({"day_of_month": "31", "month": "4,6,9,11"}, "day_of_month"),
        ({"day_of_month": "15", "month": "1", "week": "30"}, "week"),
    ],
)
def test_invalid_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(TriggerError) as caught:
        CronTrigger(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"invalid {field}: ")


@pytest.mark.parametrize("expression", ["* * * *", "* * * * * * *", "", "@sometimes", None])
def test_from_crontab_wants_five_or_six_fields(expression: object) -> None:
    with pytest.raises(TriggerError) as caught:
        CronTrigger.from_crontab(expression)  # type: ignore[arg-type]
    assert caught.value.field == "expression"


def test_dict_with_unknown_keys_is_refused() -> None:
    with pytest.raises(TriggerError) as caught:
        trigger_from_dict({"kind": "cron", "minute": "0", "hours": "9"})
    assert caught.value.field == "cron"
    assert "hours" in str(caught.value)


def test_next_fire_time_is_cheap() -> None:
    """Generous bound (the measured figure is a few µs); catches a fall back to croniter."""
    trigger = CronTrigger.from_crontab("*/5 9-17 * * 1-5", timezone="America/New_York")
    after = utc(2025, 6, 4, 10, 17)
    started = time.perf_counter()
    for _ in range(5000):
        trigger.next_fire_time(after)
    assert (time.perf_counter() - started) / 5000 < 100e-6
