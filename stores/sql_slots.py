"""The job columns the start-up load reads instead of each job's JSON document.

Loading a million jobs parsed a million documents (~5 us each with orjson) for a dozen
fields. These columns hold those fields (what the engine's timetable and the service's
start-up observers read: `FIELD_COLUMNS`). `Table.row` writes them from the Job on
every insert, update and upsert, in the statement that writes its document, so they
never disagree with it; next_run_time was a column already, the one the fire claim
writes. A trigger and a notify setting are JSON text, but few distinct triggers serve
many jobs (1,440 daily cron expressions for a million), so `SlotReader` parses each
distinct text once. The start-up load itself reads them as rows (`job_rows`): the
columns as stored, the texts parsed by the engine once per distinct text, no record
built per job.

A file made before these columns existed gets them on its first open
(`SqlStore._migrate_jobs`): added, then filled from each job's document by the same
`Table.row`. A row whose columns are empty (a document that would not decode then, or
a row inserted by an older version since) is read from its document, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from engine.interfaces import JOB_ROW_FIELDS
from stores.codec import loads, text_time
from stores.sql_tables import Column, Dialect

SLOT_COLUMNS = (
    Column("name", "long"),
    Column("kind", "text"),
    Column("target", "long"),
    Column("trigger_spec", "json"),
    Column("misfire_grace_time", "real"),
    Column("coalesced", "int"),
    Column("max_instances", "int"),
    Column("overlap_policy", "text"),
    Column("history_limit", "count"),
    Column("notify_spec", "json"),
)
#: the slot columns not named as the Job field they hold, by that field's key in the
#: job's record: taken from the record its document is encoded from, so the trigger's
#: dict (and its run date's text) is built once per write, not twice
SLOT_FROM_RECORD = {
    "kind": "kind",
    "trigger_spec": "trigger",
    "coalesced": "coalesce",
    "overlap_policy": "overlap",
    "notify_spec": "notify",
}
#: Job field -> the column holding it: every field a slot record gives, in select order
FIELD_COLUMNS = {
    "id": "id",
    "name": "name",
    "kind": "kind",
    "target": "target",
    "owner": "owner",
    "trigger": "trigger_spec",
    "next_run_time": "next_run_time",
    "enabled": "enabled",
    "paused": "paused",
    "misfire_grace_time": "misfire_grace_time",
    "coalesce": "coalesced",
    "max_instances": "max_instances",
    "overlap": "overlap_policy",
    "history_limit": "history_limit",
    "notify": "notify_spec",
}
#: where a `rows_*` row holds the trigger's text
TRIGGER_AT = JOB_ROW_FIELDS.index("trigger")
#: where a `rows_*` row holds next_run_time's text (the window's cursor, `due_job_rows`)
TIME_AT = JOB_ROW_FIELDS.index("next_run_time")
#: distinct trigger texts and fire times a reader keeps (it starts afresh when full)
READER_LIMIT = 10_000


def covers(fields: Sequence[str] | None) -> bool:
    """True when a slot record holds every one of `fields`."""
    return fields is not None and all(name in FIELD_COLUMNS for name in fields)


def missing_columns(present: Collection[str]) -> list[Column]:
    """The slot columns a jobs table with `present` columns lacks."""
    have = {name.lower() for name in present}
    return [c for c in SLOT_COLUMNS if c.name not in have]


def slot_statements(dialect: Dialect, table: str) -> dict[str, str]:
    """The statements of the slot read and of the migration, by name."""
    row = ", ".join(FIELD_COLUMNS[name] for name in JOB_ROW_FIELDS)
    nrt = FIELD_COLUMNS["next_run_time"]
    starts = (
        f"{nrt} <= :until OR {FIELD_COLUMNS['history_limit']} IS NOT NULL "
        f"OR {FIELD_COLUMNS['notify']} IS NOT NULL"
    )
    sql = {
        # the document read apart for the rare row whose columns are empty
        "rows_first": dialect.page(f"SELECT {row} FROM {table} ORDER BY id"),
        "rows_after": dialect.page(f"SELECT {row} FROM {table} WHERE id > :after ORDER BY id"),
        # a load window's start (`job_rows(due_by=...)`): what is due by :until, and
        # whatever the observers learn from (a limit or a notify), whenever it is due
        "due_rows_first": dialect.page(f"SELECT {row} FROM {table} WHERE {starts} ORDER BY id"),
        "due_rows_after": dialect.page(
            f"SELECT {row} FROM {table} WHERE ({starts}) AND id > :after ORDER BY id"
        ),
        # the window sliding forward (`due_job_rows`), each a range scan of the
        # (next_run_time, id) index: the rest of the cursor's own time, then later times
        "window_rows_tied": dialect.page(
            f"SELECT {row} FROM {table} WHERE {nrt} = :since AND id > :after ORDER BY id"
        ),
        "window_rows_from": dialect.page(
            f"SELECT {row} FROM {table} WHERE {nrt} > :since AND {nrt} <= :until ORDER BY {nrt}, id"
        ),
        "row_document": f"SELECT doc, next_run_time FROM {table} WHERE id = :id",
        "backfill_slots": (
            f"UPDATE {table} SET "
            + ", ".join(f"{c.name} = :{c.name}" for c in SLOT_COLUMNS)
            + " WHERE id = :id"
        ),
    }
    for column in SLOT_COLUMNS:
        sql[f"add_column:{column.name}"] = (
            f"ALTER TABLE {table} ADD {column.name} {dialect.types[column.kind]}"
        )
    return sql


def with_documents(
    rows: list[Any], from_document: Callable[[str], Sequence[Any] | None]
) -> list[Any]:
    """A page of `rows_*` rows as `job_rows` gives them: each whose columns are empty
    (its trigger_spec is) replaced by `from_document`'s row of its job id, read from
    its document, or left out (None: the job is gone since)."""
    if all(row[TRIGGER_AT] is not None for row in rows):
        return rows
    out = []
    for row in rows:
        whole = row if row[TRIGGER_AT] is not None else from_document(row[0])
        if whole is not None:
            out.append(whole)
    return out


class SlotReader:
    """Job records (as `SchedulerStore.job_records` gives them) from the rows of
    `SqlStore.job_rows`. One reader per load: its caches last as long as the load."""

    def __init__(self) -> None:
        self._triggers: dict[str, dict[str, Any]] = {}
        self._times: dict[str, datetime | None] = {}

    def record(self, row: Sequence[Any]) -> dict[str, Any]:
        record = dict(zip(JOB_ROW_FIELDS, row, strict=True))
        if type(record["trigger"]) is not str:  # read from its document: record values
            return record
        grace, limit, notify = (
            record["misfire_grace_time"],
            record["history_limit"],
            record["notify"],
        )
        record.update(
            trigger=self._trigger(record["trigger"]),
            next_run_time=self._time(record["next_run_time"]),
            enabled=bool(record["enabled"]),
            paused=bool(record["paused"]),
            misfire_grace_time=None if grace is None else float(grace),
            coalesce=bool(record["coalesce"]),
            max_instances=int(record["max_instances"]),
            history_limit=None if limit is None else int(limit),
            notify=None if notify is None else loads(notify),
        )
        return record

    def _trigger(self, text: str) -> dict[str, Any]:
        """The trigger's dict, parsed once per distinct text; a copy, since records are
        the caller's (a trigger dict holds only JSON scalars, so a shallow one)."""
        known = self._triggers.get(text)
        if known is None:
            if len(self._triggers) >= READER_LIMIT:
                self._triggers.clear()
            known = self._triggers[text] = loads(text)
        return dict(known)

    def _time(self, text: str | None) -> datetime | None:
        if text is None:
            return None
        known = self._times.get(text)
        if known is None:
            if len(self._times) >= READER_LIMIT:
                self._times.clear()
            known = self._times[text] = text_time(text)
        return known
