"""Every SQL statement the Oracle store can send, parsed as Oracle SQL (no server needed).

sqlglot parses the DML, queries and DDL fully. A few Oracle-only ALTER forms (index
rebuild, segment shrink, shared-pool flush) it keeps as an opaque Command; those are
held to an exact pattern instead, so a typo there fails too.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from engine.model import Job, JobKind
from engine.triggers import IntervalTrigger
from stores.base import RUN_COUNTERS
from stores.oracle import DIALECT, all_statements
from stores.sql import JOBS, build_statements

STATEMENTS = all_statements()
#: the only statements sqlglot may leave unparsed, each matched in full
OPAQUE_ALTERS = [
    re.compile(r"ALTER INDEX cw_[a-z_]+ REBUILD"),
    re.compile(r"ALTER TABLE cw_[a-z_]+ (ENABLE ROW MOVEMENT|SHRINK SPACE CASCADE)"),
    re.compile(r"ALTER SYSTEM FLUSH SHARED_POOL"),
]
BIND = re.compile(r"(?<![:\w]):([a-z_]+)\b")


def test_the_statement_list_covers_every_kind_of_work() -> None:
    kinds = {s.split()[0] for s in STATEMENTS}
    assert kinds == {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "ALTER", "DROP"}
    assert len(STATEMENTS) == len(set(STATEMENTS)) > 60


@pytest.mark.parametrize("sql", STATEMENTS, ids=[s[:60] for s in STATEMENTS])
def test_statement_parses_as_oracle(sql: str) -> None:
    tree = sqlglot.parse_one(sql, read="oracle")  # raises ParseError on bad syntax
    if isinstance(tree, exp.Command):
        assert any(p.fullmatch(sql) for p in OPAQUE_ALTERS), f"unparsed statement: {sql}"
        return
    assert not list(tree.find_all(exp.Command))
    # the parsed tree must say the same thing again when written back as Oracle SQL
    again = sqlglot.parse_one(tree.sql(dialect="oracle"), read="oracle")
    assert again == tree


@pytest.mark.parametrize("sql", STATEMENTS, ids=[s[:60] for s in STATEMENTS])
def test_statement_uses_no_syntax_oracle_lacks(sql: str) -> None:
    upper = sql.upper()
    assert " LIMIT " not in upper and "ON CONFLICT" not in upper and "IF NOT EXISTS" not in upper
    assert not sql.rstrip().endswith(";"), "oracledb rejects a trailing semicolon"
    assert "?" not in sql, "Oracle binds are :name"
    for name in BIND.findall(sql):
        assert name.upper() not in {"DATE", "LEVEL", "SIZE", "UID", "USER", "ROWID"}, name


def test_a_job_update_sends_exactly_the_binds_it_names() -> None:
    """oracledb refuses a bind its statement does not name (DPY-4008); the update and
    the MERGE's matched branch leave the run counters alone."""
    job = Job(id="j", name="n", kind=JobKind.CLASS, target="t", trigger=IntervalTrigger(minutes=1))
    statements = build_statements(DIALECT)
    update = statements["update_jobs"]
    assert set(BIND.findall(update)) == set(JOBS.update_row(job))
    assert set(BIND.findall(statements["upsert_jobs"])) == set(JOBS.row(job))
    merge_matched = statements["upsert_jobs"].split("WHEN NOT MATCHED")[0]
    for counter in RUN_COUNTERS:
        assert counter not in update and counter not in merge_matched
