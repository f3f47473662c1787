"""Scheduling policy as pure functions: first fire, misfire/coalesce, retry timing.

Nothing here touches a store, a clock or a thread, so every rule is tested with plain
datetimes.

Misfire and coalesce (`plan_fires`). Given the fire time a job is due at and `now`:
- fire times earlier than `now - misfire_grace_time` are *late*; the others up to `now`
  are *on time*; `misfire_grace_time=None` makes every fire on time;
- coalesce=False: every on-time fire runs, every late fire becomes a `missed` record
  whose error says how late it was;
- coalesce=True: all of them collapse into one: one run of the latest on-time fire, or,
  when all were late, one `missed` record for the latest. When more than one fire was
  collapsed, the run's output starts with a line `[cronwell] coalesced N fire times
  (first .. last) into this run` (the `missed` record's error says the same), so the
  count is never lost;
- the walk over past fire times is capped (`WALK_CAP` late and `WALK_CAP` on-time
  fires); past the cap it jumps with `next_fire_time` and the records say "more than N",
  so a job that was down for years costs bounded work.

First fire (`first_fire_time`): the first fire time at or after now of an occurrence at
or after now (with jitter, an occurrence just before now may still have its fire ahead:
a job added or resumed then does not take it); a one-shot date job whose date has
already passed is due at that date (the misfire policy then runs or records it) unless
it has already fired.

Retries (`retry_delay`): the n-th retry (n = the failed execution's attempt) waits
`retry_delay` seconds ("fixed") or `retry_delay * 2**(n-1)` ("exponential": 1x, 2x, 4x...),
capped at `MAX_RETRY_DELAY`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.errors import InvalidInput
from engine.interfaces import Trigger
from engine.model import EPOCH, Status
from engine.triggers.bounded import next_run

#: the smallest step between datetimes; `next_fire_time(t - TICK)` includes t itself
TICK = timedelta(microseconds=1)
WALK_CAP = 1000
MAX_RETRY_DELAY = 365 * 24 * 3600.0
BACKOFFS = ("fixed", "exponential")
RETRY_STATUSES = frozenset({Status.FAILED, Status.TIMEOUT})


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What to do with the fires of one job that are due at `now`."""

    #: fire times to run now, oldest first
    runs: tuple[datetime, ...]
    #: (fire time, error text) for fires recorded as missed, oldest first
    missed: tuple[tuple[datetime, str], ...]
    #: the job's next fire time after `now`; None when its trigger is done
    next_run_time: datetime | None
    #: prefix for the output of the (single, coalesced) run; "" when nothing was merged
    note: str = ""


def first_fire_time(
    trigger: Trigger, now: datetime, last_run_time: datetime | None = None
) -> datetime | None:
    """When a newly added or resumed job is first due (see module docstring)."""
    run = next_run(trigger, now - TICK)
    if run is not None and run[0] < now:  # jitter: an occurrence from before now is not
        run = next_run(trigger, run[1])  # the job's, even when its delayed fire is ahead
    upcoming = None if run is None else run[1]
    if upcoming is None and trigger.kind == "date":
        return trigger.next_fire_time(last_run_time or EPOCH)
    return upcoming


def _walk(
    trigger: Trigger, start: datetime | None, until: datetime, inclusive: bool, cap: int
) -> tuple[list[datetime], datetime | None, bool]:
    """Fire times from `start` up to `until`, at most `cap`; returns (times, next, capped)."""
    times: list[datetime] = []
    t = start
    while t is not None and (t <= until if inclusive else t < until):
        if len(times) == cap:
            return times, t, True
        times.append(t)
        t = trigger.next_fire_time(t)
    return times, t, False


def _lateness(fire: datetime, now: datetime) -> str:
    return f"{(now - fire).total_seconds():.3f} s"


def too_late(due: datetime, now: datetime, grace: float | None) -> str:
    """The `missed` error for a fire due at `due` judged at `now`; "" when it is still
    within `grace` seconds (None: any delay is on time) and may run."""
    if grace is None or (now - due).total_seconds() <= grace:
        return ""
    return (
        f"missed: due at {due.isoformat()}, {_lateness(due, now)} late, "
        f"beyond misfire_grace_time {grace:g} s"
    )


def _count(n: int, capped: bool) -> str:
    return f"more than {n}" if capped else str(n)


def plan_fires(
    trigger: Trigger,
    due: datetime,
    now: datetime,
    *,
    grace: float | None,
    coalesce: bool,
    cap: int = WALK_CAP,
) -> FirePlan:
    """Decide which of a job's fire times from `due` up to `now` run and which are missed."""
    if due > now:
        return FirePlan((), (), due)
    if grace is None or (now - due).total_seconds() <= grace:
        upcoming = trigger.next_fire_time(due)
        if upcoming is None or upcoming > now:  # the usual case: one fire, on time
            return FirePlan((due,), (), upcoming)
    late: list[datetime] = []
    late_capped = False
    start: datetime | None = due
    if grace is not None:
        late_limit = now - timedelta(seconds=grace)
        late, start, late_capped = _walk(trigger, due, late_limit, False, cap)
        if late_capped:
            start = trigger.next_fire_time(late_limit - TICK)
    on_time, upcoming, on_time_capped = _walk(trigger, start, now, True, cap)
    if on_time_capped:
        upcoming = trigger.next_fire_time(now)
    grace_text = "no misfire_grace_time" if grace is None else f"misfire_grace_time {grace:g} s"
    if coalesce:
        return _coalesced(late, late_capped, on_time, on_time_capped, upcoming, now, grace_text)
    missed = [
        (t, f"missed: due at {t.isoformat()}, {_lateness(t, now)} late, beyond {grace_text}")
        for t in late
    ]
    if late_capped:
        t, text = missed[-1]
        missed[-1] = (t, f"{text}; more than {cap} fire times were missed, only {cap} recorded")
    if on_time_capped:
        missed.append(
            (
                on_time[-1],
                (
                    f"missed: more than {cap} fire times fell due at once; the ones after "
                    f"{on_time[-1].isoformat()} were not run"
                ),
            )
        )
    return FirePlan(tuple(on_time), tuple(missed), upcoming)


def _coalesced(
    late: list[datetime],
    late_capped: bool,
    on_time: list[datetime],
    on_time_capped: bool,
    upcoming: datetime | None,
    now: datetime,
    grace_text: str,
) -> FirePlan:
    every = late + on_time
    count = _count(len(every), late_capped or on_time_capped)
    span = f"{every[0].isoformat()} .. {every[-1].isoformat()}" if len(every) > 1 else ""
    if on_time:
        note = f"[cronwell] coalesced {count} fire times ({span}) into this run\n" if span else ""
        return FirePlan((on_time[-1],), (), upcoming, note)
    latest = late[-1]
    text = (
        f"missed: due at {latest.isoformat()}, {_lateness(latest, now)} late, beyond {grace_text}"
    )
    if len(late) > 1:
        text = f"{text}; coalesced {count} missed fire times ({span})"
    return FirePlan((), ((latest, text),), upcoming)


def check_backoff(backoff: str) -> str:
    if backoff not in BACKOFFS:
        raise InvalidInput(f"retry_backoff must be 'fixed' or 'exponential', not {backoff!r}")
    return backoff


def should_retry(status: Status, attempt: int, retries: int) -> bool:
    """True when an execution that ended with `status` has retries left."""
    return status in RETRY_STATUSES and attempt <= retries


def retry_delay(delay: float, backoff: str, attempt: int) -> float:
    """Seconds to wait before retrying the execution whose attempt number failed."""
    if check_backoff(backoff) == "fixed":
        return min(delay, MAX_RETRY_DELAY)
    return min(delay * 2.0 ** min(attempt - 1, 64), MAX_RETRY_DELAY)
