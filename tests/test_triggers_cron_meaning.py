"""Cron as cron means it, where croniter's expansion says otherwise (cron_meaning.py):
equal ranges, `*` inside lists, steps larger than their range, steps over wrapping
ranges; and the day matching with `#` and `L` that cron.py's docstring describes."""

from __future__ import annotations

import pickle
from datetime import datetime

import pytest
from croniter import croniter

from engine.errors import TriggerError
from engine.triggers import CronTrigger, trigger_from_dict
from tests.test_triggers_cron import fires, utc


def days(trigger: CronTrigger, after: datetime, count: int) -> list[str]:
    return [f.strftime("%a %m-%d") for f in fires(trigger, after, count)]


JAN_1 = utc(2025, 1, 1)  # a Wednesday

# -- an equal range is that one value -------------------------------------------------


def test_equal_minute_range_is_that_minute() -> None:
    assert croniter.expand("5-5 * * * *")[0][0] == ["*"]  # the bug: croniter widens it
    trigger = CronTrigger(minute="5-5")
    assert fires(trigger, JAN_1, 3) == [
        utc(2025, 1, 1, 0, 5),
        utc(2025, 1, 1, 1, 5),
        utc(2025, 1, 1, 2, 5),
    ]
    assert trigger.minute == "5-5"  # shown as given


@pytest.mark.parametrize("spelling", ["Sun-Sun", "sun-sun", "SUN-SUN", "0-0", "7-7", "sun-0"])
def test_equal_weekday_range_is_that_day(spelling: str) -> None:
    trigger = CronTrigger(minute="0", hour="0", day_of_week=spelling)
    assert days(trigger, JAN_1, 3) == ["Sun 01-05", "Sun 01-12", "Sun 01-19"]


def test_equal_ranges_in_every_field_and_inside_lists() -> None:
    assert fires(CronTrigger(minute="0", hour="3-3"), JAN_1, 2) == [
        utc(2025, 1, 1, 3),
        utc(2025, 1, 2, 3),
    ]
    assert fires(CronTrigger(minute="0", hour="0", day_of_month="15-15"), JAN_1, 2) == [
        utc(2025, 1, 15),
        utc(2025, 2, 15),
    ]
    assert fires(
        CronTrigger(minute="0", hour="0", day_of_month="1", month="mar-mar"), JAN_1, 2
    ) == [
        utc(2025, 3, 1),
        utc(2026, 3, 1),
    ]
    listed = CronTrigger(minute="0", hour="0", day_of_week="0-0,3")  # croniter: every day
    assert days(listed, JAN_1, 4) == ["Sun 01-05", "Wed 01-08", "Sun 01-12", "Wed 01-15"]
    assert days(CronTrigger(minute="0", hour="0", day_of_week="5-5#2"), JAN_1, 2) == [
        "Fri 01-10",
        "Fri 02-14",
    ]
    assert CronTrigger(minute="5-5/1").next_fire_time(JAN_1) == utc(2025, 1, 1, 0, 5)
    assert CronTrigger(minute="0", hour="0", week="5-5").next_fire_time(JAN_1) == utc(2025, 1, 27)


# -- a list containing `*` is every value ---------------------------------------------


@pytest.mark.parametrize("day_of_week", ["*,0", "*,sat#3", "0,*", "*,L5"])
def test_star_inside_a_weekday_list_is_every_day(day_of_week: str) -> None:
    trigger = CronTrigger(minute="0", hour="0", day_of_week=day_of_week)  # no ValueError
    assert days(trigger, JAN_1, 4) == ["Thu 01-02", "Fri 01-03", "Sat 01-04", "Sun 01-05"]


def test_star_inside_other_lists_is_every_value() -> None:
    assert fires(CronTrigger(minute="*,5"), JAN_1, 2) == [
        utc(2025, 1, 1, 0, 1),
        utc(2025, 1, 1, 0, 2),
    ]
    assert fires(CronTrigger(minute="0", hour="1,*"), JAN_1, 2) == [
        utc(2025, 1, 1, 1),
        utc(2025, 1, 1, 2),
    ]
    every_day = CronTrigger(minute="0", hour="0", day_of_month="*,L")
    assert fires(every_day, JAN_1, 2) == [utc(2025, 1, 2), utc(2025, 1, 3)]


def test_a_starred_weekday_list_leaves_day_of_month_alone() -> None:
    """`*,0` is unrestricted like `*`, so a restricted day_of_month decides alone."""
    trigger = CronTrigger(minute="0", hour="0", day_of_month="15", day_of_week="*,0")
    assert fires(trigger, JAN_1, 2) == [utc(2025, 1, 15), utc(2025, 2, 15)]


# -- steps larger than their range are refused ------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "first"),
    [
        ("day_of_month", "*/31", "1"),
        ("minute", "4-6/3", "4"),
        ("day_of_week", "4-6/3", "4"),
        ("minute", "*/60", "0"),
        ("hour", "*/24", "0"),
        ("month", "*/12", "1"),
        ("day_of_week", "*/7", "0"),
        ("minute", "10/55", "10"),
        ("minute", "10-10/5", "10"),
        ("day_of_week", "mon-wed/5", "1"),
        ("week", "*/53", "1"),
        ("week", "10-12/3", "10"),
    ],
)
def test_step_larger_than_its_range_is_refused_naming_the_field(
    field: str, text: str, first: str
) -> None:
    with pytest.raises(TriggerError) as caught:
        CronTrigger(**{field: text})  # type: ignore[arg-type]
    assert caught.value.field == field
    message = str(caught.value)
    assert message.startswith(f"invalid {field}: step ")
    assert f"in {text!r} is larger than the range" in message
    assert f"only {first} would ever match" in message


def test_day_step_message_says_steps_restart_every_month() -> None:
    with pytest.raises(TriggerError) as caught:
        CronTrigger(minute="0", hour="0", day_of_month="*/31")
    assert str(caught.value) == (
        "invalid day_of_month: step 31 in '*/31' is larger than the range 1-31 it steps "
        "through, so only 1 would ever match (a step starts again every month); "
        "write '1' if that is what you mean"
    )


def test_steps_that_reach_a_second_value_stay_allowed() -> None:
    assert fires(CronTrigger(minute="*/59"), JAN_1, 3) == [
        utc(2025, 1, 1, 0, 59),
        utc(2025, 1, 1, 1, 0),
        utc(2025, 1, 1, 1, 59),
    ]
    assert fires(CronTrigger(minute="0", hour="0", day_of_month="*/30"), JAN_1, 3) == [
        utc(2025, 1, 31),
        utc(2025, 2, 1),
        utc(2025, 3, 1),
    ]
    assert days(CronTrigger(minute="0", hour="0", day_of_week="*/6"), JAN_1, 2) == [
        "Sat 01-04",
        "Sun 01-05",
    ]
    assert CronTrigger(minute="4-6/2").next_fire_time(JAN_1) == utc(2025, 1, 1, 0, 4)
    assert CronTrigger(minute="*/1") == CronTrigger(minute="*/1")  # a step of 1 is fine


def test_a_step_over_a_wrapping_range_is_refused() -> None:
    assert croniter.expand("50-10/11 * * * *")[0][0] == [2, 50]  # croniter's reading
    with pytest.raises(TriggerError) as caught:
        CronTrigger(minute="50-10/11")
    assert caught.value.field == "minute"
    assert "wraps around" in str(caught.value) and "50-59/11,0-10/11" in str(caught.value)
    wrapping = CronTrigger(minute="50-10")  # without a step: croniter's meaning, kept
    assert fires(wrapping, utc(2025, 1, 1, 0, 9), 3) == [
        utc(2025, 1, 1, 0, 10),
        utc(2025, 1, 1, 0, 50),
        utc(2025, 1, 1, 0, 51),
    ]


def test_from_crontab_refuses_the_same_way() -> None:
    with pytest.raises(TriggerError) as caught:
        CronTrigger.from_crontab("0 0 */31 * *")
    assert caught.value.field == "day_of_month"


# -- day matching with # and L (cron.py's docstring) --------------------------------------


def test_nth_weekday_with_a_restricted_day_of_month_is_either() -> None:
    with pytest.raises(Exception, match="failed to find next date"):
        croniter("0 0 1 * 5#2", JAN_1).get_next(datetime)  # croniter: both, so never
    either = CronTrigger.from_crontab("0 0 1 * 5#2")
    assert days(either, JAN_1, 4) == ["Fri 01-10", "Sat 02-01", "Fri 02-14", "Sat 03-01"]


def test_last_weekday_with_last_day_is_either() -> None:
    trigger = CronTrigger.from_crontab("0 0 L * L5")
    assert days(trigger, utc(2025, 3, 1), 4) == ["Fri 03-28", "Mon 03-31", "Fri 04-25", "Wed 04-30"]


def test_nth_entries_list_together_but_not_with_plain_days() -> None:
    assert days(CronTrigger.from_crontab("0 0 * * 5#2,L5"), JAN_1, 3) == [
        "Fri 01-10",
        "Fri 01-31",
        "Fri 02-14",
    ]
    assert days(CronTrigger.from_crontab("0 0 * * 5#5"), JAN_1, 2) == ["Fri 01-31", "Fri 05-30"]
    with pytest.raises(TriggerError) as caught:
        CronTrigger(day_of_week="5#2,sat")
    assert caught.value.field == "day_of_week"
    assert "mixes nth-weekday entries" in str(caught.value)
    with pytest.raises(TriggerError) as caught:
        CronTrigger(day_of_week="L")
    assert caught.value.field == "day_of_week"


def test_a_stored_trigger_with_a_too_large_step_still_loads() -> None:
    """Jobs saved before the step rule keep loading (and firing as cron reads them: the
    range's first value); only new expressions are refused."""
    stored = {"kind": "cron", "minute": "0", "hour": "0", "day_of_month": "*/31"}
    trigger = trigger_from_dict(stored)
    assert fires(trigger, JAN_1, 2) == [utc(2025, 2, 1), utc(2025, 3, 1)]  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    with pytest.raises(TriggerError):  # the lenient build is cached; a new one still refused
        CronTrigger(minute="0", hour="0", day_of_month="*/31")
