"""The embedded store: one DuckDB file in the data dir, owned by one process for writing.

Everything that reads or writes the database goes through `Store`; domains hand it SQL (or
Arrow tables) and never keep connections of their own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tsunagu.config import Settings
from tsunagu.events.normalize import COLUMNS, EventRow
from tsunagu.exceptions import StoreBusy
from tsunagu.store.identifiers import (
    SUPPRESSIBLE_COLUMNS,
    add_functions,
    country_of,
    normalize_macros,
)
from tsunagu.store.message_ids import MessageIds
from tsunagu.store.schema import MIGRATIONS

EVENT_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("user_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("channel", pa.string()),
        ("store_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("received_at", pa.timestamp("us")),
        ("source", pa.string()),
        ("device_id", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("line_user_id", pa.string()),
        ("member_card", pa.string()),
        ("previous_id", pa.string()),
        ("raw", pa.string()),
    ]
)


def _iso(column: str) -> str:
    """A UTC time as Python's isoformat writes it, with Z: fractions only when there are any."""
    return (
        f"CASE WHEN epoch_us({column}) % 1000000 = 0 THEN strftime({column}, '%Y-%m-%dT%H:%M:%SZ') "
        f"ELSE strftime({column}, '%Y-%m-%dT%H:%M:%S.%fZ') END"
    )


STORED_RAW = f"""json_merge_patch(raw, json_object(
    'type', type, 'messageId', message_id, 'timestamp', {_iso("timestamp")},
    'receivedAt', {_iso("received_at")}, 'context', json_object('channel', channel)))"""
"""The stored JSON of a message as sent (an `EventRow`'s raw): the message with what tsunagu
resolved written in, every other key kept (a JSON merge patch, RFC 7396)."""

_STORED = ", ".join([*COLUMNS[:-1], STORED_RAW])
_AS_GIVEN = ", ".join(COLUMNS)

# New rows only: a messageId already stored (given as $1) is skipped; the relation holds each
# messageId once. $2 is the commit stamp.
_INSERT_NEW_EVENTS = f"""
INSERT INTO events ({", ".join(COLUMNS)}, stored_at)
SELECT {{columns}}, $2::TIMESTAMP FROM {{batch}} AS b
WHERE b.message_id NOT IN (SELECT unnest($1::VARCHAR[]))
"""
_INSERT_EVENTS = f"""
INSERT INTO events ({", ".join(COLUMNS)}, stored_at)
SELECT {{columns}}, $1::TIMESTAMP FROM {{batch}}
"""
_INSERT_BATCH = _INSERT_EVENTS.format(batch="batch", columns=_STORED)
"""`_INSERT_EVENTS` of messages as sent in an Arrow table the calling frame holds as `batch`."""


CHECKPOINT_THRESHOLD = "128MB"
"""Write-ahead log written before its rows go into the database file. DuckDB's 16 MB default
has a stream of small commits rewrite the table's last row groups over and over: the collector
spent half its writer's time there (an insert costs 10 us an event with it, 5.5 with this).
The price is a longer replay of the log after a crash (seconds)."""


def utcnow() -> datetime:
    """Now, as the naive UTC the store keeps."""
    return datetime.now(UTC).replace(tzinfo=None)


def events_table(rows: Sequence[EventRow]) -> pa.Table:
    """Rows as an Arrow table in the events table's column order."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    return pa.table(dict(zip(COLUMNS, columns, strict=True)), schema=EVENT_SCHEMA)


class Store:
    """A DuckDB database with tsunagu's schema, migrated on open."""

    def __init__(
        self, path: Path, *, read_only: bool = False, memory_limit: str | None = None
    ) -> None:
        self.path = path
        self.read_only = read_only
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            "checkpoint_threshold": CHECKPOINT_THRESHOLD
        }
        if memory_limit:
            config["memory_limit"] = memory_limit
        self.country = country_of(path.parent)
        """Phones without a country code are read as this country's (the rules file's)."""
        try:
            self._con = duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            raise StoreBusy(_busy_message(path, exc)) from None
        add_functions(self._con)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._ids: MessageIds | None = None
        self._last_stamp: datetime | None = None
        self._has_suppressed: bool | None = None
        self._version: int | None = None
        self.memo: dict[str, Any] = {}
        """What domains derive from tables only this process writes, kept until they change
        them (each domain names its keys and drops what it changed)."""
        if not read_only:
            self._migrate()

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """The store of `settings`' data dir, with its memory budget."""
        return cls(settings.database_path, memory_limit=settings.memory_limit)

    # -- connections -------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one thread; DuckDB connections are not shared across threads."""
        return self._con.cursor()

    def prepared_cursor(self, setup_sql: str) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on which `setup_sql` (macros) has run, kept for reuse: creating
        a dozen macros costs more than the lookup they serve."""
        cursors: dict[str, duckdb.DuckDBPyConnection] = self._local.__dict__.setdefault(
            "cursors", {}
        )
        cur = cursors.get(setup_sql)
        if cur is None:
            cur = cursors[setup_sql] = self.cursor()
            if setup_sql:
                cur.execute(setup_sql)
        return cur

    def message_hashes(self, batch: pa.Table) -> np.ndarray:
        """`message_hashes` of `batch` on this thread's cursor, outside any transaction: the
        collector hashes a request's messageIds where it parses them, not in the one writer."""
        return message_hashes(self.prepared_cursor(""), batch)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One writer at a time inside this process; commit on success, roll back on error."""
        with self._write_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.cursor()
        try:
            return cur.execute(sql, params).fetchall()
        finally:
            cur.close()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    # -- schema ------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """Read once, then kept: only this process migrates its store."""
        if self._version is None:
            try:
                self._version = int(
                    self.scalar("SELECT coalesce(max(version), 0) FROM schema_version")
                )
            except duckdb.CatalogException:
                return 0
        return self._version

    def _migrate(self) -> None:
        with self.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER NOT NULL, description VARCHAR, applied_at TIMESTAMP NOT NULL)"
            )
        self._apply_migrations()

    def _apply_migrations(self) -> None:
        current = self.schema_version
        for version, (description, statements) in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            with self.transaction() as cur:
                for statement in statements:
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)", [version, description, utcnow()]
                )
            self._version = version

    # -- events ------------------------------------------------------------------------------
    def _message_ids(self, cur: duckdb.DuckDBPyConnection) -> MessageIds:
        if self._ids is None:
            self._ids = MessageIds(cur)
        return self._ids

    def _stamp(self, cur: duckdb.DuckDBPyConnection) -> datetime:
        """A commit stamp later than every one before, even if the clock steps back."""
        if self._last_stamp is None:
            rows = cur.execute("SELECT max(stored_at) FROM events").fetchall()
            self._last_stamp = rows[0][0] or datetime.min
        self._last_stamp = max(utcnow(), self._last_stamp + timedelta(microseconds=1))
        return self._last_stamp

    def warm(self) -> None:
        """Load the messageId index now rather than at the first write (the server does this)."""
        with self.transaction() as cur:
            self._message_ids(cur)

    def stored_among(self, cur: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
        """The messageIds of `relation` that the events table already holds (exact).

        Runs inside the caller's write transaction.
        """
        columns = cur.execute(
            f"SELECT message_id, hash(message_id) AS h FROM {relation}"
        ).fetchnumpy()
        hashes = np.asarray(columns["h"], dtype=np.uint64)
        return sorted(self._stored(cur, np.asarray(columns["message_id"]), hashes))

    def _stored(
        self, cur: duckdb.DuckDBPyConnection, ids: np.ndarray | pa.ChunkedArray, hashes: np.ndarray
    ) -> set[str]:
        """Which of the messageIds `ids` (with their `hashes`) are stored: the index rules out
        most, the table answers for the rest."""
        maybe = np.flatnonzero(self._message_ids(cur).maybe_stored(hashes))
        if not maybe.size:
            return set()
        candidates = [str(m) for m in _take(ids, maybe)]
        rows = cur.execute(
            "SELECT DISTINCT message_id FROM events WHERE message_id IN (SELECT unnest(?::VARCHAR[]))",
            [candidates],
        ).fetchall()
        return {r[0] for r in rows}

    def _suppressed(self, cur: duckdb.DuckDBPyConnection) -> bool:
        if self._has_suppressed is None:
            self._has_suppressed = count(cur, "SELECT count(*) FROM suppressed_identifiers") > 0
        return self._has_suppressed

    def suppression_changed(self) -> None:
        """Call after adding to the suppression list (erasure)."""
        self._has_suppressed = None

    def _without_suppressed(self, cur: duckdb.DuckDBPyConnection, relation: str) -> str:
        """`relation`, less events carrying an identifier of an erased person."""
        if not self._suppressed(cur):
            return relation
        cur.execute(normalize_macros(self.country))
        checks = " OR ".join(
            f"(s.type = '{kind}' AND s.value_hash = sha256('{kind}:' || tg_clean('{kind}', b.{column})))"
            for kind, column in SUPPRESSIBLE_COLUMNS
        )
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _unsuppressed AS SELECT * FROM {relation} b "
            f"WHERE NOT EXISTS (SELECT 1 FROM suppressed_identifiers s WHERE {checks})"
        )
        return "_unsuppressed"

    def insert_new_events(
        self,
        cur: duckdb.DuckDBPyConnection,
        relation: str,
        stored: list[str] | None = None,
        *,
        fresh: bool = False,
        as_sent: bool = True,
    ) -> int:
        """Insert the rows of `relation` (events columns, each messageId once) whose messageId
        is new; returns the count. `stored`: the result of `stored_among`, when the caller has
        it already. `fresh`: the caller made every messageId just now, so none needs looking
        up. `as_sent`: `raw` holds messages as sent (`STORED_RAW` completes them); else it is
        the JSON to store.

        Runs inside the caller's write transaction.
        """
        relation = self._without_suppressed(cur, relation)
        columns = _STORED if as_sent else _AS_GIVEN
        if fresh:
            sql = _INSERT_EVENTS.format(batch=relation, columns=columns)
            params: list[Any] = [self._stamp(cur)]
        else:
            if stored is None:
                stored = self.stored_among(cur, relation)
            sql = _INSERT_NEW_EVENTS.format(batch=relation, columns=columns)
            params = [stored, self._stamp(cur)]
        # Every messageId of the relation goes into the index: those stored before are in it
        # already, and the rest is stored now.
        hashes = cur.execute(f"SELECT hash(message_id) AS h FROM {relation}").fetchnumpy()["h"]
        inserted = count(cur, sql, params)
        self._message_ids(cur).add(np.asarray(hashes, dtype=np.uint64))
        return inserted

    def add_events(
        self,
        cur: duckdb.DuckDBPyConnection,
        rows: Sequence[EventRow] | pa.Table,
        *,
        fresh: bool = False,
        hashes: np.ndarray | None = None,
    ) -> int:
        """`insert_events` inside the caller's write transaction `cur`; `fresh` as for
        `insert_new_events`, `hashes` as for `insert_events`."""
        batch = rows if isinstance(rows, pa.Table) else events_table(rows)
        if batch.num_rows == 0:
            return 0
        hashes = message_hashes(cur, batch) if hashes is None else hashes
        if not fresh:
            batch, hashes = self._new_only(cur, batch, hashes)
            if batch.num_rows == 0:
                return 0
        if self._suppressed(cur):
            with registered(cur, "_event_batch", batch):
                return self.insert_new_events(cur, "_event_batch", fresh=True)
        # Not the INSERT's RETURNING: that has DuckDB keep the rows in memory until the commit
        # writes them, where a plain INSERT writes them to the file as it goes (a commit 30
        # times shorter on a large import).
        cur.execute(_INSERT_BATCH, [self._stamp(cur)])
        self._message_ids(cur).add(hashes)  # rolled back later? Then false alarms, checked exactly
        return batch.num_rows

    def _new_only(
        self, cur: duckdb.DuckDBPyConnection, batch: pa.Table, hashes: np.ndarray
    ) -> tuple[pa.Table, np.ndarray]:
        """The rows of `batch` (and their `hashes`) whose messageId is not stored and not
        repeated by an earlier row of the batch, in the batch's order. Exact: a hash only
        points at rows to compare by messageId."""
        ids = batch.column("message_id")
        keep = np.ones(batch.num_rows, dtype=bool)
        unique, counts = np.unique(hashes, return_counts=True)
        if unique.size < hashes.size:
            rows = np.flatnonzero(np.isin(hashes, unique[counts > 1]))
            seen: set[str] = set()
            for row, message_id in zip(rows, _take(ids, rows), strict=True):
                keep[row] = message_id not in seen
                seen.add(message_id)
        stored = self._stored(cur, ids, hashes)
        if stored:
            value_set = pa.array(sorted(stored), type=ids.type)
            keep &= ~np.asarray(pc.is_in(ids, value_set=value_set), dtype=bool)
        if keep.all():
            return batch, hashes
        return batch.filter(pa.array(keep)), hashes[keep]

    def insert_events(
        self, rows: Sequence[EventRow] | pa.Table, *, hashes: np.ndarray | None = None
    ) -> int:
        """Store events not stored before (by messageId) in one commit, in their order (of
        two with one messageId, the first); returns how many were new. `hashes`: DuckDB's
        `hash(message_id)` of each row, when the caller has them.

        Durable when it returns: DuckDB syncs its write-ahead log on commit.
        """
        table = rows if isinstance(rows, pa.Table) else events_table(rows)
        if table.num_rows == 0:
            return 0
        with self.transaction() as cur:
            return self.add_events(cur, table, hashes=hashes)


def message_hashes(cur: duckdb.DuckDBPyConnection, batch: pa.Table) -> np.ndarray:
    """DuckDB's `hash(message_id)` of each row of `batch`, the messageId index's keys; any
    cursor of the store will do."""
    hashes = cur.execute("SELECT hash(message_id) AS h FROM batch").fetchnumpy()["h"]
    return np.asarray(hashes, dtype=np.uint64)


def _take(values: np.ndarray | pa.ChunkedArray, rows: np.ndarray) -> list[str]:
    """The strings at `rows` of a numpy or Arrow column."""
    if isinstance(values, np.ndarray):
        return [str(v) for v in values[rows]]
    return values.take(pa.array(rows)).to_pylist()


@contextmanager
def registered(
    cur: duckdb.DuckDBPyConnection, name: str, table: pa.Table
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`table` readable as `name` on `cur` for the block."""
    cur.register(name, table)
    try:
        yield cur
    finally:
        cur.unregister(name)


def count(cur: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> int:
    """The single integer a `SELECT count(*) ...` (or an INSERT's row count) answers."""
    rows = cur.execute(sql, params).fetchall()  # all: DuckDB 2 keeps a half-read result open
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _busy_message(path: Path, exc: Exception) -> str:
    server = path.parent / "server.json"
    if server.exists():
        try:
            info = json.loads(server.read_text())
            where = f" (pid {info.get('pid')}, {info.get('url')})"
        except (OSError, ValueError):
            where = ""
        return (
            f"the store {path} is held by a running tsunagu server{where}. "
            "Send data to it over HTTP, or stop it (Ctrl+C) and run this command again."
        )
    return (
        f"cannot open the store {path}: another process holds it ({exc}). "
        "Stop that process, or point --data-dir somewhere else."
    )
