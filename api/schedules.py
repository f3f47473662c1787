"""Schedules over HTTP: the trigger a request asks for, and how a job's trigger shows.

A scheduler-surface job has exactly one kind of schedule, given by one of:
- the seed's cron fields (`minute`, `hour`, `day_of_month`, `month`, `day_of_week`,
  `week`; minute and hour required, the rest default to `*`),
- `cron`: a crontab line (5 fields, or 6 with seconds first) or a nickname
  (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`, and `@annually`,
  `@midnight`),
- `interval_seconds`: every n seconds (1 .. ten years),
- `run_date`: once, at an ISO 8601 date in the future.
Any of them takes the optional `start_date`, `end_date` (ISO 8601; without an offset in
the job's `timezone`) and `jitter_seconds`: the window and the random delay of
engine/triggers/bounded.py. The scripts surface keeps `run_date` and takes the same
three optional fields.

Sending two kinds at once is a 400 naming them; a bad value is InvalidField (422 on the
scheduler surface, 400 on the scripts surface), naming the field. On an update, a new
kind replaces the old one, cron fields merge with the job's current ones, and an
explicit `null` removes `start_date`, `end_date` or `jitter_seconds`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from api.limits import MAX_RUN_DATE
from api.schedule_words import describe
from api.validation import Field
from engine.errors import InvalidField, InvalidInput, TriggerError
from engine.model import Job
from engine.triggers import BoundedTrigger, CronTrigger, DateTrigger, IntervalTrigger, Trigger
from engine.triggers.bounded import new_seed, next_run

#: the seed document's cron fields, as the scheduler surface names them
SEED_CRON_FIELDS = ("minute", "hour", "day_of_month", "month", "day_of_week", "week")
SEED_CRON_REQUIRED = ("minute", "hour")
NICKNAMES = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
MAX_INTERVAL = 10 * 365 * 86400
MAX_JITTER = 366 * 86400
_TICK = timedelta(microseconds=1)

KIND_FIELDS = (
    Field(
        "cron",
        "string",
        max_length=200,
        example="*/30 * * * * *",
        description="crontab line: 5 fields, 6 with seconds first, or "
        f"{', '.join(NICKNAMES)}; instead of the cron fields, interval_seconds or run_date",
    ),
    Field(
        "interval_seconds",
        "integer",
        minimum=1,
        maximum=MAX_INTERVAL,
        description="every n seconds of real time, first one interval after creation (or at "
        "start_date); instead of the cron fields, cron or run_date",
    ),
    Field(
        "run_date",
        "string",
        max_length=100,
        description="once, at this ISO 8601 time (without an offset: in timezone); instead "
        "of the cron fields, cron or interval_seconds",
    ),
)
WINDOW_FIELDS = (
    Field(
        "start_date",
        "string",
        max_length=100,
        nullable=True,
        description="ISO 8601; no fire before it (without an offset: in timezone); null on "
        "update removes it",
    ),
    Field(
        "end_date",
        "string",
        max_length=100,
        nullable=True,
        description="ISO 8601; no fire after it (without an offset: in timezone); null on "
        "update removes it",
    ),
    Field(
        "jitter_seconds",
        "number",
        minimum=0,
        maximum=MAX_JITTER,
        nullable=True,
        description="delay each fire by a random 0 .. n seconds, never reaching the next "
        "occurrence nor passing end_date; 0 or null = none",
    ),
)
WINDOW_NAMES = tuple(f.name for f in WINDOW_FIELDS)
#: every field that changes a scheduler-surface job's schedule
SCHEDULE_FIELDS = (*SEED_CRON_FIELDS, *(f.name for f in KIND_FIELDS), *WINDOW_NAMES, "timezone")


# -- reading a request --------------------------------------------------------------------


def kinds_sent(values: dict[str, Any]) -> list[str]:
    """The schedule kinds a body names: "cron fields", "cron", "interval_seconds", "run_date"."""
    sent = ["cron fields"] if any(name in values for name in SEED_CRON_FIELDS) else []
    return sent + [f.name for f in KIND_FIELDS if f.name in values]


def _one_kind(values: dict[str, Any]) -> str | None:
    sent = kinds_sent(values)
    if len(sent) > 1:
        raise InvalidInput(
            f"Send exactly one schedule, not {' and '.join(_named(values, k) for k in sent)}: "
            "the cron fields (minute, hour ...), cron, interval_seconds or run_date"
        )
    return sent[0] if sent else None


def _named(values: dict[str, Any], kind: str) -> str:
    if kind != "cron fields":
        return kind
    return ", ".join(name for name in SEED_CRON_FIELDS if name in values)


def parse_time(field: str, text: str, timezone: str) -> datetime:
    """An aware instant from ISO 8601 text; naive text is a wall time in `timezone`."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidField(
            field, f"{field} is not an ISO 8601 datetime (YYYY-MM-DDTHH:MM:SS): {text!r}"
        ) from None
    when = when if when.tzinfo is not None else on_wall_clock(when, ZoneInfo(timezone))
    try:
        # an offset can carry a date at either end of the calendar past year 1 or 9999
        out_of_range = when.astimezone(UTC) > MAX_RUN_DATE
    except OverflowError:
        out_of_range = True
    if out_of_range:
        raise InvalidField(
            field,
            f"{field} {text.strip()!r} is out of range: it must be before "
            f"{MAX_RUN_DATE.isoformat()}",
        )
    return when


def on_wall_clock(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant a naive wall time names in `zone`, by the cron DST rule for fixed
    times: a repeated wall time (autumn) is its first occurrence; one the clocks skip
    (spring) is the first valid instant after the gap, the moment the clocks jump."""
    first = wall.replace(tzinfo=zone)  # fold 0: the first of a repeated time
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # in a gap, fold 1 reads the wall time with the offset after the jump and fold 0
    # with the one before: the jump lies between those two instants
    low, high = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first.astimezone(UTC)
    after = high.astimezone(zone).utcoffset()
    while high - low > _TICK:
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high.astimezone(zone)


def future_time(field: str, text: str, timezone: str, now: datetime) -> datetime:
    """`parse_time`, refused when it is not after `now`."""
    when = parse_time(field, text, timezone)
    if when <= now:
        raise InvalidField(
            field,
            f"{field} {when.isoformat()} is in the past (now is "
            f"{now.astimezone(when.tzinfo).isoformat(timespec='seconds')}); "
            "schedule a time in the future",
        )
    return when


def trigger_for_create(values: dict[str, Any], timezone: str, now: datetime) -> Trigger:
    """The trigger a scheduler-surface create asks for (exactly one kind required)."""
    if _one_kind(values) is None:
        raise InvalidInput(
            "Missing schedule: send the cron fields (at least minute and hour), cron, "
            "interval_seconds or run_date"
        )
    return _build(values, None, values.get("timezone", timezone), now)


def trigger_for_update(values: dict[str, Any], current: Trigger, now: datetime) -> Trigger | None:
    """The new trigger a partial update asks for; None when no schedule field was sent."""
    if not any(name in values for name in SCHEDULE_FIELDS):
        return None
    _one_kind(values)
    return _build(values, current, values.get("timezone", current.timezone), now)


def date_trigger(values: dict[str, Any], timezone: str, now: datetime) -> Trigger:
    """The scripts surface's trigger: `run_date`, with the optional window and jitter."""
    run_date = future_time("run_date", values["run_date"], timezone, now)
    return _bounded(values, None, DateTrigger(run_date, timezone=timezone), timezone, now, False)


def _build(
    values: dict[str, Any], current: Trigger | None, timezone: str, now: datetime
) -> Trigger:
    inner = _inner(current)
    kind = _one_kind(values)
    anchor_moves = False
    if kind == "cron fields":
        fields = cron_fields(inner) if isinstance(inner, CronTrigger) else None
        if fields is None:
            missing = [name for name in SEED_CRON_REQUIRED if name not in values]
            if missing:
                raise InvalidInput(
                    f"Missing required field{'s' * (len(missing) > 1)}: {', '.join(missing)}"
                )
            fields = dict.fromkeys(SEED_CRON_FIELDS, "*")
        second = inner.second if isinstance(inner, CronTrigger) else "0"
        merged = {name: values.get(name, fields[name]) for name in SEED_CRON_FIELDS}
        new: Trigger = CronTrigger(**merged, timezone=timezone, second=second)
    elif kind == "cron":
        new = _from_crontab(values["cron"], timezone)
    elif kind == "interval_seconds":
        new = IntervalTrigger(seconds=values["interval_seconds"], start_date=now, timezone=timezone)
        anchor_moves = True
    elif kind == "run_date":
        new = DateTrigger(future_time("run_date", values["run_date"], timezone, now), timezone)
    else:  # an update of the window, jitter or zone only
        assert inner is not None, "a create always names its kind"
        new = _in_zone(inner, timezone)
        anchor_moves = isinstance(inner, IntervalTrigger) and "start_date" in values
    return _bounded(values, current, new, timezone, now, anchor_moves)


def _bounded(
    values: dict[str, Any],
    current: Trigger | None,
    inner: Trigger,
    timezone: str,
    now: datetime,
    anchor_moves: bool,
) -> Trigger:
    """`inner` inside the window and jitter the request (over `current`) asks for."""
    old = current if isinstance(current, BoundedTrigger) else None
    start = _window_time(values, "start_date", old.start_date if old else None, timezone)
    end = _window_time(values, "end_date", old.end_date if old else None, timezone)
    if "end_date" in values and end is not None and end <= now:
        raise InvalidField(
            "end_date",
            f"end_date {end.isoformat()} is in the past (now is "
            f"{now.astimezone(end.tzinfo).isoformat(timespec='seconds')}); the job would never fire",
        )
    jitter = values.get("jitter_seconds", old.jitter if old else 0.0) or 0.0
    if isinstance(inner, IntervalTrigger) and anchor_moves:
        # every n seconds from start_date when given, else from now: first fire one
        # interval from now, as APScheduler does
        inner = IntervalTrigger(
            seconds=inner.interval.total_seconds(),
            start_date=start if start is not None else now + inner.interval,
            timezone=timezone,
        )
    if start is None and end is None and not jitter:
        return inner
    seed = old.seed if old is not None else new_seed()
    trigger = BoundedTrigger(inner, start, end, jitter, seed)
    if trigger.next_fire_time(now - _TICK) is None:
        raise InvalidField(
            "end_date",
            f"no fire time of this schedule falls between now and end_date "
            f"{end.isoformat() if end else ''}; the job would never fire",
        )
    return trigger


def _window_time(
    values: dict[str, Any], field: str, old: datetime | None, timezone: str
) -> datetime | None:
    if field not in values:
        return old
    text = values[field]
    return None if text is None else parse_time(field, text, timezone)


def _from_crontab(text: str, timezone: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(text, timezone=timezone)
    except TriggerError as error:
        if error.field == "timezone":
            raise
        raise InvalidField("cron", f"invalid cron {text.strip()!r}: {error}") from None


def _inner(trigger: Trigger | None) -> Trigger | None:
    return trigger.inner if isinstance(trigger, BoundedTrigger) else trigger


def _in_zone(trigger: Trigger, timezone: str) -> Trigger:
    """The same schedule read in another zone (a cron's fields are wall times there)."""
    if trigger.timezone == timezone:
        return trigger
    if isinstance(trigger, CronTrigger):
        f = cron_fields(trigger)
        return CronTrigger(
            f["minute"],
            f["hour"],
            f["day_of_month"],
            f["month"],
            f["day_of_week"],
            f["week"],
            timezone=timezone,
            second=trigger.second,
        )
    if isinstance(trigger, IntervalTrigger):
        return IntervalTrigger(
            seconds=trigger.interval.total_seconds(),
            start_date=trigger.start_date,
            timezone=timezone,
        )
    if isinstance(trigger, DateTrigger):
        return DateTrigger(trigger.run_date, timezone=timezone)
    return trigger


# -- showing a job's schedule ---------------------------------------------------------------


def cron_fields(trigger: CronTrigger) -> dict[str, str]:
    """The six seed fields of a cron trigger."""
    return {name: getattr(trigger, name) for name in SEED_CRON_FIELDS}


def crontab_line(trigger: CronTrigger) -> str | None:
    """The trigger as a crontab line (6 fields when it has seconds); None when its
    `week` field narrows it, which no crontab line can say."""
    if trigger.week != "*":
        return None
    fields = [getattr(trigger, name) for name in SEED_CRON_FIELDS[:5]]
    return " ".join([trigger.second, *fields] if trigger.second != "0" else fields)


def request_fields(trigger: Trigger) -> dict[str, Any]:
    """The schedule as the request fields that would create it (the scheduler surface
    shows them at the top level, so what was sent is what is seen)."""
    inner = _inner(trigger)
    bounds = trigger if isinstance(trigger, BoundedTrigger) else None
    return {
        "cron": crontab_line(inner) if isinstance(inner, CronTrigger) else None,
        "interval_seconds": _seconds(inner) if isinstance(inner, IntervalTrigger) else None,
        "run_date": _iso(inner.run_date) if isinstance(inner, DateTrigger) else None,
        "start_date": _iso(bounds.start_date) if bounds else None,
        "end_date": _iso(bounds.end_date) if bounds else None,
        "jitter_seconds": _number(bounds.jitter) if bounds else 0,
    }


def schedule(trigger: Trigger) -> dict[str, Any]:
    """The trigger in words and as data (both surfaces' `schedule`)."""
    inner = _inner(trigger)
    data: dict[str, Any] = {
        "kind": inner.kind if inner else trigger.kind,
        "description": describe(trigger),
    }
    if isinstance(inner, CronTrigger):
        data["cron"] = crontab_line(inner)
        data["second"] = inner.second
        data.update(cron_fields(inner))
    elif isinstance(inner, IntervalTrigger):
        data["interval_seconds"] = _seconds(inner)
        data["anchor"] = _iso(inner.start_date)
    elif isinstance(inner, DateTrigger):
        data["run_date"] = _iso(inner.run_date)
    bounds = trigger if isinstance(trigger, BoundedTrigger) else None
    data["timezone"] = trigger.timezone
    data["start_date"] = _iso(bounds.start_date) if bounds else None
    data["end_date"] = _iso(bounds.end_date) if bounds else None
    data["jitter_seconds"] = _number(bounds.jitter) if bounds else 0
    return data


def _seconds(trigger: IntervalTrigger) -> int | float:
    return _number(trigger.interval.total_seconds())


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


# -- the next runs of a job ---------------------------------------------------------------------


def upcoming(job: Job, count: int) -> dict[str, Any]:
    """`GET /api/scheduler/jobs/<id>/next-runs`: the next `count` fire times of `job`
    as the engine will fire them (from its stored next_run_time on), each with the
    occurrence it stands for (they differ by the jitter) and the time on the job's
    clock. A paused or disabled job has none, and the message says why."""
    state = {"job_id": job.id, "timezone": job.timezone, "is_enabled": job.enabled}
    state.update(is_paused=job.paused, count=count)
    if not job.enabled:
        message = f"Job {job.id} is disabled: it has no next runs (set is_enabled to true)"
        return {"status": "success", "message": message, **state, "total": 0, "data": []}
    if job.paused:
        message = f"Job {job.id} is paused: it has no next runs until it is resumed"
        return {"status": "success", "message": message, **state, "total": 0, "data": []}
    runs: list[tuple[datetime, datetime]] = []
    due = job.next_run_time
    if due is not None:
        first = next_run(job.trigger, due - _TICK)
        runs.append(first if first is not None and first[1] == due else (due, due))
    while runs and len(runs) < count:
        following = next_run(job.trigger, runs[-1][1])
        if following is None:
            break
        runs.append(following)
    data = [
        {
            "fire_time": when.isoformat(),
            "local_time": when.astimezone(ZoneInfo(job.timezone)).isoformat(),
            "occurrence": occurrence.isoformat(),
        }
        for occurrence, when in runs
    ]
    if data:
        message = f"Next {len(data)} run{'s' * (len(data) != 1)} of job {job.id}"
    else:
        message = f"Job {job.id} has no more runs (its schedule is over)"
    return {"status": "success", "message": message, **state, "total": len(data), "data": data}
