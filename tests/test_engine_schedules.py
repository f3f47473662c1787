"""Schedules through the engine on the fake clock: each trigger kind across both DST
changes of Europe/Berlin, windows (start_date, end_date) and jitter bounds. The engine
fires what the trigger says: executions record the jittered fire time they ran at."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.model import Execution, Status
from engine.triggers import BoundedTrigger, CronTrigger, DateTrigger, IntervalTrigger
from tests.engine_support import Harness, make_job

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z)
SPRING = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
AUTUMN = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def berlin(*fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=BERLIN, fold=fold).astimezone(UTC)  # type: ignore[misc]


def drive(h: Harness, job_id: str, until: datetime) -> list[Execution]:
    """Step the fake clock to each fire the engine has scheduled, up to `until`; the
    job's executions, oldest first."""
    while True:
        due = h.store.get_job(job_id).next_run_time
        if due is None or due > until:
            break
        h.clock.set(due)
        h.scheduler.run_once(due)
        h.settle()
    return h.executions(job_id)


def shown(executions: list[Execution]) -> list[str]:
    return [
        e.scheduled_for.astimezone(BERLIN).strftime("%m-%d %H:%M %Z")
        for e in executions
        if e.scheduled_for is not None
    ]


def add(h: Harness, job_id: str, trigger: Any) -> None:
    h.add(make_job(job_id, trigger))


# -- each kind across both changes -------------------------------------------------------


def test_fixed_time_cron_across_both_changes() -> None:
    with Harness() as h:
        add(h, "nightly", CronTrigger(minute="30", hour="2", timezone="Europe/Berlin"))
        spring = drive(h, "nightly", SPRING + timedelta(days=1))
        assert shown(spring)[-3:] == ["03-28 02:30 CET", "03-29 03:00 CEST", "03-30 02:30 CEST"]
        autumn = drive(h, "nightly", AUTUMN + timedelta(days=1, hours=12))
        assert shown(autumn)[-3:] == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]
        assert {e.status for e in autumn} == {Status.COMPLETED}


def test_hourly_cron_fires_every_real_hour_on_both_change_days() -> None:
    with Harness() as h:
        hourly = CronTrigger(minute="0", timezone="Europe/Berlin")
        spring_day = BoundedTrigger(
            hourly, start_date=berlin(2026, 3, 29, 0, 0), end_date=berlin(2026, 3, 29, 23, 59)
        )
        autumn_day = BoundedTrigger(
            hourly, start_date=berlin(2026, 10, 25, 0, 0), end_date=berlin(2026, 10, 25, 23, 59)
        )
        add(h, "spring", spring_day)
        add(h, "autumn", autumn_day)
        spring = drive(h, "spring", SPRING + timedelta(days=2))
        autumn = drive(h, "autumn", AUTUMN + timedelta(days=2))
        for day, hours in ((spring, 23), (autumn, 25)):
            times = [e.scheduled_for for e in day]
            assert len(times) == hours
            assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(times))
        assert shown(autumn)[1:5] == [
            "10-25 01:00 CEST",
            "10-25 02:00 CEST",
            "10-25 02:00 CET",
            "10-25 03:00 CET",
        ]
        assert h.store.get_job("spring").next_run_time is None  # the window is over


def test_interval_keeps_real_time_across_both_changes() -> None:
    with Harness() as h:
        for name, change in (("spring", SPRING), ("autumn", AUTUMN)):
            start = change - timedelta(hours=3)
            every_90 = IntervalTrigger(minutes=90, start_date=start, timezone="Europe/Berlin")
            add(
                h,
                name,
                BoundedTrigger(every_90, start_date=start, end_date=change + timedelta(hours=3)),
            )
        spring = drive(h, "spring", SPRING + timedelta(days=1))
        autumn = drive(h, "autumn", AUTUMN + timedelta(days=1))
        assert shown(spring) == [
            "03-28 23:00 CET",
            "03-29 00:30 CET",
            "03-29 03:00 CEST",  # 90 real minutes after 00:30 CET
            "03-29 04:30 CEST",
            "03-29 06:00 CEST",
        ]
        assert shown(autumn) == [
            "10-25 00:00 CEST",
            "10-25 01:30 CEST",
            "10-25 02:00 CET",  # 90 real minutes after 01:30 CEST
            "10-25 03:30 CET",
            "10-25 05:00 CET",
        ]


def test_dates_on_the_change_days_read_on_berlin_clocks() -> None:
    with Harness() as h:
        first_pass = berlin(2026, 10, 25, 2, 30)  # 02:30 happens twice; fold 0 is CEST
        second_pass = berlin(2026, 10, 25, 2, 30, fold=1)
        add(h, "first", DateTrigger(first_pass, timezone="Europe/Berlin"))
        add(h, "second", DateTrigger(second_pass, timezone="Europe/Berlin"))
        assert second_pass - first_pass == timedelta(hours=1)
        drive(h, "first", AUTUMN + timedelta(days=1))
        drive(h, "second", AUTUMN + timedelta(days=1))
        assert shown(h.executions("first")) == ["10-25 02:30 CEST"]
        assert shown(h.executions("second")) == ["10-25 02:30 CET"]


def test_jittered_cron_across_both_changes_stays_within_its_bound() -> None:
    """30 2 * * * with 10 minutes of jitter: every fire within 10 minutes after its
    occurrence, the occurrences being the DST rule's (03:00 CEST on the spring day)."""
    with Harness() as h:
        nightly = CronTrigger(minute="30", hour="2", timezone="Europe/Berlin")
        trigger = BoundedTrigger(nightly, jitter=600, seed=8)
        add(h, "nightly", trigger)
        spring = drive(h, "nightly", SPRING + timedelta(days=1))[-3:]
        autumn = [
            e
            for e in drive(h, "nightly", AUTUMN + timedelta(days=2))
            if AUTUMN - timedelta(days=1, hours=6)
            < e.scheduled_for
            < AUTUMN + timedelta(days=1, hours=6)  # type: ignore[operator]
        ]
        occurrences = [
            berlin(2026, 3, 28, 2, 30),
            SPRING,  # 03:00 CEST, when the clock jumps
            berlin(2026, 3, 30, 2, 30),
            berlin(2026, 10, 24, 2, 30),
            berlin(2026, 10, 25, 2, 30),  # the first pass only
            berlin(2026, 10, 26, 2, 30),
        ]
        for execution, occurrence in zip([*spring, *autumn], occurrences, strict=True):
            assert execution.scheduled_for is not None
            assert occurrence <= execution.scheduled_for < occurrence + timedelta(minutes=10)
            assert execution.started_at == execution.scheduled_for  # ran at its jittered time


# -- windows --------------------------------------------------------------------------------


def test_a_window_fires_nothing_before_its_start_and_stops_at_its_end() -> None:
    with Harness() as h:
        start, end = datetime(2026, 2, 1, 9, tzinfo=UTC), datetime(2026, 2, 1, 12, tzinfo=UTC)
        hourly = BoundedTrigger(CronTrigger(minute="0"), start_date=start, end_date=end)
        add(h, "window", hourly)
        assert h.store.get_job("window").next_run_time == start
        executions = drive(h, "window", end + timedelta(days=1))
        assert [e.scheduled_for for e in executions] == [
            start + timedelta(hours=k) for k in range(4)
        ]
        job = h.store.get_job("window")
        assert job.next_run_time is None and job.total_executions == 4
        h.clock.set(end + timedelta(days=2))
        h.scheduler.run_once(end + timedelta(days=2))
        h.settle()
        assert len(h.executions("window")) == 4  # nothing more, ever


def test_a_window_that_started_long_ago_picks_up_from_now() -> None:
    with Harness() as h:
        every_minute = IntervalTrigger(minutes=1, start_date=datetime(2025, 1, 1, tzinfo=UTC))
        add(h, "old", BoundedTrigger(every_minute, start_date=datetime(2025, 1, 1, tzinfo=UTC)))
        added = h.store.get_job("old").next_run_time
        assert added is not None and added - h.clock.now() <= timedelta(minutes=1)
        assert drive(h, "old", added)[0].status == Status.COMPLETED  # on time, not missed


# -- jitter bounds ---------------------------------------------------------------------------


def test_jitter_bounds_on_the_fake_clock() -> None:
    with Harness() as h:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        minutely = IntervalTrigger(seconds=60, start_date=start)
        add(h, "spread", BoundedTrigger(minutely, jitter=30, seed=21))
        executions = drive(h, "spread", start + timedelta(minutes=100))
        assert len(executions) >= 100  # every occurrence fired, none skipped or merged
        delays = []
        for k, execution in enumerate(executions[:100]):
            occurrence = start + timedelta(minutes=k)
            assert execution.scheduled_for is not None
            delay = (execution.scheduled_for - occurrence).total_seconds()
            assert 0 <= delay < 30
            assert (
                execution.status == Status.COMPLETED
                and execution.started_at == execution.scheduled_for
            )
            delays.append(delay)
        assert len(set(delays)) == 100 and max(delays) - min(delays) > 20


def test_jitter_wider_than_the_interval_never_reaches_the_next_occurrence() -> None:
    with Harness() as h:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        every_ten = IntervalTrigger(seconds=10, start_date=start)
        add(h, "tight", BoundedTrigger(every_ten, jitter=3600, seed=2))
        executions = drive(h, "tight", start + timedelta(seconds=600))
        assert len(executions) >= 60
        for k, execution in enumerate(executions[:60]):
            occurrence = start + timedelta(seconds=10 * k)
            assert execution.scheduled_for is not None
            assert occurrence <= execution.scheduled_for < occurrence + timedelta(seconds=10)


def _delayed_at(occurrence: datetime) -> BoundedTrigger:
    """An hourly trigger with 10 minutes of jitter whose `occurrence` fires a minute or
    more late (the first seed that does so: the delay is a function of the seed)."""
    for seed in range(1, 1000):
        trigger = BoundedTrigger(CronTrigger(minute="0"), jitter=600, seed=seed)
        run = trigger.next_run(occurrence - timedelta(microseconds=1))
        if run is not None and run[1] - occurrence > timedelta(minutes=1):
            return trigger
    raise AssertionError("no seed delays the occurrence by a minute")


def test_a_job_added_or_resumed_inside_an_occurrence_s_jitter_waits_for_the_next() -> None:
    ten = datetime(2026, 2, 1, 10, tzinfo=UTC)
    trigger = _delayed_at(ten)
    late_fire = trigger.next_fire_time(ten - timedelta(microseconds=1))
    assert late_fire is not None
    between = ten + (late_fire - ten) / 2  # 10:00 has passed, its delayed fire has not
    eleven = trigger.next_fire_time(late_fire)
    with Harness() as h:
        h.clock.set(between)
        add(h, "late", trigger)
        assert h.store.get_job("late").next_run_time == eleven  # not 10:00's fire
        h.do(h.scheduler.pause_job("late"))
        h.clock.set(ten + timedelta(hours=1) + (late_fire - ten) / 2)
        resumed = h.do(h.scheduler.resume_job("late"))
        assert resumed.next_run_time == trigger.next_fire_time(eleven)  # 12:00's
        h.clock.set(ten - timedelta(minutes=5))
        h.do(h.scheduler.modify_job("late", trigger=trigger))  # before 10:00: it is taken
        assert h.store.get_job("late").next_run_time == late_fire
