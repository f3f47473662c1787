"""The compiled form of a cron expression, shared by every trigger that uses it.

croniter parses and validates (see cron_fields.py); it is not used per call, because its
`get_next` costs ~130 µs and the engine calls `next_fire_time` on every add and fire.
Instead the allowed values are kept as sorted tuples and `_next_wall` walks them
field by field with `bisect` (a few µs), down to the second. `compile_schedule` is cached on the field
strings and zone, so 100,000 jobs with one expression share one CronSchedule.

DST rules (see the cron module docstring) live in `next_fire_time`: the walk finds the
next matching *wall-clock* second, and `_instants` turns that wall time into 0, 1 or 2
real instants depending on whether it is skipped, normal or repeated.
"""

from __future__ import annotations

from bisect import bisect_left
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from engine.errors import TriggerError
from engine.triggers.common import check_after, load_zone
from engine.triggers.cron_fields import LAST, Expanded, expand, expand_seconds, parse_week

#: Calendar patterns (leap years, weekdays, ISO weeks) repeat every 400 years, so a walk
#: that finds nothing in that span never will.
_HORIZON_YEARS = 400
_MAX_YEAR = 9999
_ZERO = timedelta(0)
#: Zones with no offset changes ever: the walk's wall time *is* UTC.
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})
_DAYS_CACHE_LIMIT = 256

Wall = tuple[int, int, int, int, int, int]  # year, month, day, hour, minute, second


class CronSchedule:
    """Allowed seconds, minutes, hours, days and months of one expression in one zone.

    `fields` are the six crontab-and-week fields, then `second` ("0" for a five-field
    expression)."""

    __slots__ = (
        "_days_cache",
        "_days_of_month",
        "_days_of_week",
        "_hours",
        "_minutes",
        "_months",
        "_nth_weekday",
        "_seconds",
        "_weeks",
        "_wildcard",
        "_zone",
        "fields",
        "timezone",
    )

    def __init__(self, fields: tuple[str, ...], timezone: str) -> None:
        zone = load_zone(timezone)
        expanded: Expanded = expand(*fields[:5])
        self.fields = fields
        self.timezone = timezone
        self._zone: ZoneInfo | None = None if timezone in _UTC_NAMES else zone
        self._seconds = expand_seconds(fields[6])
        self._minutes = expanded.minutes
        self._hours = expanded.hours
        self._months = expanded.months
        self._days_of_month = expanded.days_of_month
        self._days_of_week = expanded.days_of_week
        self._nth_weekday = dict(expanded.nth_weekday)
        if self._days_of_week is None and self._nth_weekday:
            self._days_of_week = tuple(range(7))
        self._weeks = parse_week(fields[5])
        # Vixie cron's MIN_STAR / HR_STAR: such jobs follow real time across DST changes
        # (the second field does not change which kind a job is).
        self._wildcard = fields[0].startswith("*") or fields[1].startswith("*")
        self._days_cache: dict[int, tuple[int, ...]] = {}
        self._check_some_day_matches()

    # -- the one public question ---------------------------------------------------

    def next_fire_time(self, after: datetime) -> datetime | None:
        """Earliest fire strictly after `after`, aware UTC; None if there is none before 9999."""
        check_after(after)
        zone = self._zone
        if zone is None:
            now = after if after.tzinfo is UTC else after.astimezone(UTC)
            wall = self._next_wall(
                now.year, now.month, now.day, now.hour, now.minute, now.second + 1
            )
            return None if wall is None else datetime(*wall, 0, UTC)
        return self._next_in_zone(after.astimezone(UTC), zone)

    def _next_in_zone(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        # zone.utcoffset() on naive wall times, and constructors rather than
        # datetime.replace(): several times cheaper, and this runs on every add and fire.
        local = after.astimezone(zone)
        year, month, day, hour, minute, second = (
            local.year,
            local.month,
            local.day,
            local.hour,
            local.minute,
            local.second,
        )
        if not local.fold:
            # In the first pass of a repeated hour, wall times up to an hour *behind*
            # `local` come round again in the second pass: start the walk that far back.
            second_pass = zone.utcoffset(datetime(year, month, day, hour, minute, second, fold=1))
            back = _offset(local) - (second_pass or _ZERO)
            if back:
                start = datetime(year, month, day, hour, minute, second) - back
                year, month, day = start.year, start.month, start.day
                hour, minute, second = start.hour, start.minute, start.second
        best: datetime | None = None
        wall = self._next_wall(year, month, day, hour, minute, second + 1)
        while wall is not None:
            instants = self._instants(wall, zone)
            for instant in instants:
                if instant > after and (best is None or instant < best):
                    best = instant
            # A wall time's earliest instant only grows with the wall time, so once it
            # passes the best fire found, no later wall time can do better.
            if best is not None and instants and instants[0] >= best:
                return best
            year, month, day, hour, minute, second = wall
            wall = self._next_wall(year, month, day, hour, minute, second + 1)
        return best

    # -- wall time -> real instants (the DST rule) ------------------------------------

    def _instants(self, wall: Wall, zone: ZoneInfo) -> tuple[datetime, ...]:
        first_offset = zone.utcoffset(datetime(*wall)) or _ZERO
        second_offset = zone.utcoffset(datetime(*wall, fold=1)) or _ZERO
        first = datetime(*wall, 0, UTC) - first_offset
        if first_offset == second_offset:
            return (first,)
        second = datetime(*wall, 0, UTC) - second_offset
        if first < second:  # repeated (fall back): wildcard jobs fire in both passes
            return (first, second) if self._wildcard else (first,)
        # skipped (spring forward): fixed-time jobs fire once when the clock jumps
        return () if self._wildcard else (_transition(second, first, zone),)

    # -- the calendar walk ----------------------------------------------------------

    def _next_wall(
        self, year: int, month: int, day: int, hour: int, minute: int, second: int
    ) -> Wall | None:
        """Smallest matching wall time >= the given one; fields may overflow by one."""
        months, hours, minutes, seconds = self._months, self._hours, self._minutes, self._seconds
        limit = min(year + _HORIZON_YEARS, _MAX_YEAR)
        while year <= limit:
            index = bisect_left(months, month)
            if index == len(months):
                year, month, day, hour, minute, second = year + 1, months[0], 1, 0, 0, 0
                continue
            if months[index] != month:
                month, day, hour, minute, second = months[index], 1, 0, 0, 0
            days = self._days(year, month)
            index = bisect_left(days, day)
            if index == len(days):
                month, day, hour, minute, second = month + 1, 1, 0, 0, 0
                continue
            if days[index] != day:
                day, hour, minute, second = days[index], 0, 0, 0
            index = bisect_left(hours, hour)
            if index == len(hours):
                day, hour, minute, second = day + 1, 0, 0, 0
                continue
            if hours[index] != hour:
                hour, minute, second = hours[index], 0, 0
            index = bisect_left(minutes, minute)
            if index == len(minutes):
                hour, minute, second = hour + 1, 0, 0
                continue
            if minutes[index] != minute:
                minute, second = minutes[index], 0
            index = bisect_left(seconds, second)
            if index == len(seconds):
                minute, second = minute + 1, 0
                continue
            return year, month, day, hour, minute, seconds[index]
        return None

    def _days(self, year: int, month: int) -> tuple[int, ...]:
        key = year * 16 + month
        days = self._days_cache.get(key)
        if days is None:
            if len(self._days_cache) >= _DAYS_CACHE_LIMIT:
                self._days_cache.clear()
            days = self._days_cache[key] = self._compute_days(year, month)
        return days

    def _compute_days(self, year: int, month: int) -> tuple[int, ...]:
        """Matching days of one month: day_of_month OR day_of_week when both are
        restricted (croniter's and POSIX cron's rule), AND the ISO week filter."""
        length = monthrange(year, month)[1]
        by_month_day = self._matching_month_days(length)
        by_weekday = self._matching_weekdays(year, month, length)
        if by_month_day is None:
            days = set(range(1, length + 1)) if by_weekday is None else by_weekday
        elif by_weekday is None:
            days = by_month_day
        else:
            days = by_month_day | by_weekday
        if self._weeks is not None:
            days = {d for d in days if date(year, month, d).isocalendar()[1] in self._weeks}
        return tuple(sorted(days))

    def _matching_month_days(self, length: int) -> set[int] | None:
        if self._days_of_month is None:
            return None
        return {
            length if value == LAST else int(value)
            for value in self._days_of_month
            if value == LAST or int(value) <= length
        }

    def _matching_weekdays(self, year: int, month: int, length: int) -> set[int] | None:
        if self._days_of_week is None:
            return None
        first_weekday = (date(year, month, 1).weekday() + 1) % 7  # cron: 0 = Sunday
        days: set[int] = set()
        for weekday in self._days_of_week:
            occurrences = list(range(1 + (weekday - first_weekday) % 7, length + 1, 7))
            wanted = self._nth_weekday.get(weekday)
            if wanted is None:
                days.update(occurrences)
                continue
            for which in wanted:
                if which == LAST:
                    days.add(occurrences[-1])
                elif int(which) <= len(occurrences):
                    days.add(occurrences[int(which) - 1])
        return days

    def _check_some_day_matches(self) -> None:
        """Refuse expressions no date can ever satisfy (`30 2 *`, week 53 of January...)."""
        for year in range(2000, 2000 + _HORIZON_YEARS):
            for month_number in self._months:
                if self._compute_days(year, month_number):
                    return
        field = "week" if self._weeks is not None else "day_of_month"
        day_of_month, month, day_of_week, week = self.fields[2:6]
        raise TriggerError(
            field,
            f"no date ever matches day_of_month={day_of_month!r}, month={month!r}, "
            f"day_of_week={day_of_week!r}, week={week!r}",
        )


def _offset(moment: datetime) -> timedelta:
    return moment.utcoffset() or _ZERO


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The instant in (before, after] where `zone` springs forward (to the second)."""
    low, high = int(before.timestamp()), int(after.timestamp())
    offset_before = _offset(before.astimezone(zone))
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(datetime.fromtimestamp(middle, zone)) == offset_before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


@lru_cache(maxsize=4096)
def compile_schedule(fields: tuple[str, ...], timezone: str) -> CronSchedule:
    """One shared CronSchedule per (fields, zone): parse once, however many jobs use it."""
    return CronSchedule(fields, timezone)
