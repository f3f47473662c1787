"""Backfill: the occurrences of a job's schedule that fell in a past range, run now.

`occurrences` lists them oldest first (the occurrence a fire stands for, before any
jitter: `Execution.scheduled_for`), at most `MAX_OCCURRENCES` per call; a range holding
more is refused with how many it holds (counted up to `COUNT_LIMIT`). The loop records
every one `queued` with reason `backfill` at once and gives them to the worker pool's
hold: they run one at a time (each run of the job that ends starts the next), or up to
max_instances at once when the job's overlap is `allow`. Misfire grace does not apply:
running them late is the point. Fires of the job's own schedule meanwhile meet its
overlap policy as usual (with `skip` they are skipped while the backfill runs).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.errors import InvalidField
from engine.interfaces import Trigger
from engine.triggers.bounded import next_run

MAX_OCCURRENCES = 1000
#: occurrences counted at most to say how many a refused range holds
COUNT_LIMIT = 100_000
_TICK = timedelta(microseconds=1)


def occurrences(trigger: Trigger, start: datetime, end: datetime) -> list[datetime]:
    """Occurrences in [start, end], oldest first, or InvalidField("end") past the limit."""
    found: list[datetime] = []
    after = start - _TICK
    while len(found) <= COUNT_LIMIT:
        run = next_run(trigger, after)
        if run is None:
            break
        occurrence, fire = run
        if occurrence > end:
            break
        if occurrence >= start:
            found.append(occurrence)
        after = max(fire, occurrence)
    if len(found) > MAX_OCCURRENCES:
        count = f"more than {COUNT_LIMIT:,}" if len(found) > COUNT_LIMIT else f"{len(found):,}"
        raise InvalidField(
            "end",
            f"the range holds {count} occurrences of the job's schedule; a backfill runs at "
            f"most {MAX_OCCURRENCES:,} (split the range)",
        )
    return found


def decision(overlap: str, max_instances: int) -> str:
    """The overlap_decision recorded on each backfilled execution."""
    if overlap == "allow" and max_instances > 1:
        return (
            f"allowed: a backfill runs up to max_instances={max_instances} at once; overlap=allow"
        )
    return f"queued: a backfill runs its occurrences one at a time; overlap={overlap}"
