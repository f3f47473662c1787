"""The SQL backends' building blocks: columns, indexes, tables and the dialect.

A `Table` says which scalar columns a record keeps beside its JSON `doc` and how to bind
an object to them; a `Dialect` supplies what differs between databases (column types,
upsert, paging, "create if missing", insert-if-missing). stores/sql.py and
stores/sql_cluster.py define their tables with these.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from stores.codec import dumps, loads, revive_times, time_text


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    #: "key", "text", "time", "int" or "doc"; or, nullable: "long" (text of any length),
    #: "real" (a float), "count" (an int) or "json" (a value as JSON text); a Dialect
    #: maps kinds to DDL types
    kind: str


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    model: type
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...]
    #: columns that win over the doc's copy and are read back beside it
    overlay: tuple[str, ...] = ()
    #: columns computed from the object instead of read from the same-named attribute
    derived: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    #: columns that hold a value of the object's record (`to_record`, what `doc` is
    #: encoded from), by its key there: the record is built once per row, so a value it
    #: computes (a job's trigger dict) is not computed again for its column
    from_record: Mapping[str, str] = field(default_factory=dict)
    #: columns only their own statements write: an update or an upsert over an existing
    #: row leaves them as stored (an insert still writes them)
    kept: tuple[str, ...] = ()
    #: columns a record never changes once inserted: an update leaves them out of its
    #: SET list, so SQLite skips rewriting the indexes over them (it decides by the SET
    #: list, not the values; an execution's update then touches 2 indexes, not 4)
    fixed: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def overwritten(self) -> tuple[str, ...]:
        """The columns an update or an upsert over an existing row sets."""
        return tuple(n for n in self.names if n != "id" and n not in self.kept)

    @property
    def updated(self) -> tuple[str, ...]:
        """The columns an update sets: the overwritten ones that are not fixed."""
        return tuple(n for n in self.overwritten if n not in self.fixed)

    @property
    def read_columns(self) -> str:
        return ", ".join(("doc", *self.overlay))

    def row(self, obj: Any) -> dict[str, Any]:
        """Bind values for one object: scalar columns plus the JSON doc."""
        return self.values(obj, self.columns)

    def values(self, obj: Any, columns: Sequence[Column]) -> dict[str, Any]:
        """Bind values of `columns` (of this table) for one object."""
        row: dict[str, Any] = {}
        record: dict[str, Any] | None = None
        for column in columns:
            kind = column.kind
            key = self.from_record.get(column.name)
            if kind == "doc" or key is not None:
                if record is None:
                    record = obj.to_record()
                if key is None:  # the doc
                    row["doc"] = dumps(record)
                    continue
                value = record[key]
            else:
                derive = self.derived.get(column.name)
                value = getattr(obj, column.name) if derive is None else derive(obj)
            if kind == "time":
                value = time_text(value)
            elif kind == "int":
                value = int(value)
            elif value is None:
                pass
            elif kind == "real":
                value = float(value)
            elif kind == "count":
                value = int(value)
            elif kind == "json":
                value = dumps(value)
            row[column.name] = value
        return row

    def update_row(self, obj: Any) -> dict[str, Any]:
        """Bind values for the update statement: the id and the updated columns
        (oracledb refuses a bind the statement does not name)."""
        row = self.row(obj)
        return {name: row[name] for name in ("id", *self.updated)}

    def decode(self, values: Sequence[Any]) -> Any:
        """The object for one row selected as `read_columns`."""
        return self.model.from_record(self.record(values))  # type: ignore[attr-defined]

    def record(self, values: Sequence[Any]) -> dict[str, Any]:
        """The record (`from_record`'s argument) of one row selected as `read_columns`."""
        record: dict[str, Any] = loads(values[0])
        record.update(zip(self.overlay, values[1:], strict=True))
        return revive_times(self.model, record)


class Dialect:
    """What differs between SQL databases. The defaults are standard SQL."""

    name = "sql"
    types: ClassVar[Mapping[str, str]] = {}
    #: "IF NOT EXISTS " where the database has it; otherwise the store checks first
    if_not_exists = ""

    def create_table(self, table: Table) -> str:
        columns = ", ".join(f"{c.name} {self.types[c.kind]}" for c in table.columns)
        return f"CREATE TABLE {self.if_not_exists}{table.name} ({columns})"

    def create_index(self, table: Table, index: Index) -> str:
        unique = "UNIQUE " if index.unique else ""
        columns = ", ".join(index.columns)
        return f"CREATE {unique}INDEX {self.if_not_exists}{index.name} ON {table.name} ({columns})"

    @abstractmethod
    def upsert(self, table: Table) -> str:
        """Insert one row, or overwrite the `table.overwritten` columns of the row with
        the same id."""

    @abstractmethod
    def page(self, select: str) -> str:
        """`select` limited to :limit rows after skipping :offset."""

    def lock_rows(self, select: str) -> str:
        """`select`, locking the rows it reads until the transaction ends, skipping rows
        another transaction holds. This default adds nothing: for databases whose write
        transaction already excludes every other writer (SQLite)."""
        return select

    def lock_row(self, select: str) -> str:
        """`select`, locking the row it reads until the transaction ends, waiting for a
        transaction that holds it (never skipping it). This default adds nothing, as
        for `lock_rows`."""
        return select

    @abstractmethod
    def insert_missing(self, table: Table, values: Mapping[str, str]) -> str:
        """Insert one row of `values` (column -> SQL expression) unless a row with the
        same id exists; an existing row is left as it is."""
