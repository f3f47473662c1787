"""A revision of the job table that SQLite keeps by itself, so the API can answer a job
list again without fetching every row while no job changed (api/list_answers.py).

The `jobs_revision` row of `cw_counters` is bumped by triggers after every insert,
update and delete on `cw_jobs`, in the writing statement's own transaction, whoever
writes: the store's job writes, a fire's claim (next_run_time), the run counter
(total_executions, last_run_time), another node or program on the same file. Every job
list is a pure function of the rows, so the rows read in the same read transaction as
the counter give the list for as long as the counter reads the same; a rolled-back
write takes its bump back with it. Each job write pays one more single-row UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence

from stores.sql import JOBS

COUNTER = "jobs_revision"
SEED = f"INSERT OR IGNORE INTO cw_counters (id, seq) VALUES ('{COUNTER}', 0)"
READ = f"SELECT seq FROM cw_counters WHERE id = '{COUNTER}'"
_BUMP = f"UPDATE cw_counters SET seq = seq + 1 WHERE id = '{COUNTER}'"
TRIGGERS = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {JOBS.name}_revision_{event.lower()} "
    f"AFTER {event} ON {JOBS.name} BEGIN {_BUMP}; END"
    for event in ("INSERT", "UPDATE", "DELETE")
)


def create_statements() -> Sequence[str]:
    """The counter row (after `cw_counters` exists) and the triggers that keep it."""
    return (SEED, *TRIGGERS)
