"""The seam between analytics and the database that runs it (after Splink's DatabaseAPI).

Analyses build SQL text and never execute it; an `Engine` is the one thing that runs it. The
text is written once, in DuckDB's dialect, and an engine for another dialect gets it
transpiled by SQLGlot (`Engine.compile`), which raises on a construct the target lacks rather
than failing deep inside. Only DuckDB runs today; a Spark engine is a subclass that supplies
`rows` over a Spark session and says `dialect = "spark"`. The tests transpile every query to
Spark so that the seam stays honest.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import ErrorLevel

from tsunagu.store import Store

SOURCE_DIALECT = "duckdb"


class Engine:
    """Runs analytics SQL on the store's DuckDB database."""

    dialect = SOURCE_DIALECT

    def __init__(self, store: Store) -> None:
        self.store = store

    def compile(self, sql: str) -> str:
        """`sql` (DuckDB dialect) in this engine's dialect."""
        return transpile(sql, self.dialect)

    walks_in_process = True
    """Whether analyses may fetch rows and finish in numpy (analytics/walk.py): yes for the
    embedded database; an engine on a cluster answers with the portable SQL instead."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The result of one statement, as tuples."""
        return self.store.query(self.compile(sql))

    def table(self, sql: str) -> pa.Table:
        """The result of one statement, as an Arrow table."""
        cur = self.store.cursor()
        try:
            return cur.sql(self.compile(sql)).to_arrow_table()
        finally:
            cur.close()


def transpile(sql: str, dialect: str) -> str:
    """`sql` written for DuckDB, in `dialect`; raises `sqlglot.errors.UnsupportedError` for
    what that dialect cannot say."""
    if dialect == SOURCE_DIALECT:
        return sql
    (out,) = sqlglot.transpile(
        sql, read=SOURCE_DIALECT, write=dialect, unsupported_level=ErrorLevel.RAISE
    )
    return out
