"""Bulk event import: Segment messages from JSONL, or flat rows from CSV / Parquet.

Every message goes through the same rules as the collector (`message_row`; a JSONL line is read
as it is, a CSV or Parquet row as the message it makes). Messages are committed in
batches; a messageId stored before (by an earlier import or the collector) is skipped, so
importing a file twice adds nothing. Rejected lines go to `FILE.rejects.csv`.
"""

from __future__ import annotations

import csv
import gc
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from tsunagu.events.normalize import EventRow, message_row, normalize
from tsunagu.exceptions import InvalidInput, TsunaguError
from tsunagu.store import Store, utcnow
from tsunagu.store.db import events_table
from tsunagu.store.files import (
    ImportResult,
    data_suffix,
    detect_encoding,
    header_key,
    open_binary,
    open_text,
    record_import,
    rejects_path,
)

CHUNK = 25_000
"""Messages validated together (in one worker call)."""
COMMIT_ROWS = 250_000
"""Messages committed together: large commits go straight to the database file instead of
through the write-ahead log (a crash loses at most one commit, and the import is idempotent)."""
PARALLEL_BYTES = 64 * 1024 * 1024
"""Files larger than this are parsed in worker processes."""

# Flat column → where it goes in a Segment message.
_TOP_LEVEL = {
    "type": "type",
    "event": "event",
    "name": "name",
    "userid": "userId",
    "anonymousid": "anonymousId",
    "messageid": "messageId",
    "timestamp": "timestamp",
    "originaltimestamp": "originalTimestamp",
    "sentat": "sentAt",
    "previousid": "previousId",
    "groupid": "groupId",
}


# An item of an input file: (row number, bytes read so far or 0, the message or a JSONL line as
# bytes, why the row is unusable or None).
Item = tuple[int, int, Any, str | None]


def _jsonl(path: Path) -> Iterator[Item]:
    """Lines are handed on unparsed: parsing happens in `normalize_chunk`, maybe in a worker."""
    with open_binary(path) as fh:
        done = 0
        for number, line in enumerate(fh, start=1):
            done += len(line)
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if line.strip():
                yield number, done, line, None


def flat_to_message(row: dict[str, Any]) -> dict[str, Any]:
    """A flat CSV/Parquet row as a Segment message (`properties.x`, `context.x`, `traits.x`
    columns go where their prefix says; other unknown columns become properties/traits)."""
    message: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    context: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    for column, value in row.items():
        if value is None or value == "":
            continue
        key = header_key(column)
        if key in _TOP_LEVEL:
            message[_TOP_LEVEL[key]] = value
        elif key == "channel":
            context["channel"] = value
        elif column.startswith("context."):
            context[column.removeprefix("context.")] = value
        elif column.startswith("traits."):
            traits[column.removeprefix("traits.")] = value
        elif column.startswith("properties."):
            properties[column.removeprefix("properties.")] = value
        else:
            properties[column] = value
    if message.get("type") == "identify":
        traits = {**properties, **traits}
        properties = {}
    if properties:
        message["properties"] = properties
    if traits:
        message["traits"] = traits
    if context:
        message["context"] = context
    message.setdefault("type", "track")
    return message


def _csv_rows(path: Path, encoding: str | None) -> Iterator[Item]:
    enc = detect_encoding(path, encoding)
    with open_text(path, enc) as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise InvalidInput(f"{path.name}: the file is empty", field="file")
        for row in reader:
            if None in row:
                yield reader.line_num, 0, row, "more values than header columns"
                continue
            yield reader.line_num, 0, flat_to_message(row), None


def _parquet_rows(path: Path) -> Iterator[Item]:
    import pyarrow.parquet as pq

    number = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK):
        for row in batch.to_pylist():
            number += 1
            yield number, 0, flat_to_message(row), None


def _source_rows(path: Path, encoding: str | None) -> Iterator[Item]:
    suffix = data_suffix(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl(path)
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _csv_rows(path, encoding)
    raise InvalidInput(
        f"file: events import takes .jsonl, .csv or .parquet, not {suffix!r}", field="file"
    )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Bulk work allocates millions of short-lived containers; the cyclic collector's passes
    over them cost more than the work itself (none of them forms a cycle)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def normalize_chunk(
    items: list[Item], received_at: datetime, source: str
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Normalise a chunk of input items into an events table and its rejects (row, reason,
    data). A plain function of its arguments, so a worker process can run it."""
    rows: list[EventRow] = []
    rejected: list[tuple[int, str, str]] = []
    with gc_paused():
        for number, _, raw, error in items:
            if error is None:
                try:
                    if isinstance(raw, bytes):  # a JSONL line, read as it is
                        rows.append(
                            message_row(raw.strip(), received_at=received_at, source=source)
                        )
                    else:
                        rows.append(normalize(raw, received_at=received_at, source=source))
                    continue
                except TsunaguError as exc:
                    error = exc.message
            if isinstance(raw, bytes):
                text = raw.decode("utf-8", errors="replace").strip()
            else:
                text = orjson.dumps(raw, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
            rejected.append((number, error, text[:2000]))
        return events_table(rows), rejected


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _normalized(
    chunks: Iterator[list[Item]], received_at: datetime, source: str, workers: int
) -> Iterator[tuple[pa.Table, list[tuple[int, str, str]], int]]:
    """Normalised chunks in file order, with the bytes read so far; in `workers` processes
    (spawned: the parent holds DuckDB's threads, which a fork would copy mid-flight)."""
    if workers <= 0:
        for chunk in chunks:
            yield (*normalize_chunk(chunk, received_at, source), chunk[-1][1])
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        pending: deque[tuple[Future[tuple[pa.Table, list[tuple[int, str, str]]]], int]] = deque()
        for chunk in chunks:
            pending.append((pool.submit(normalize_chunk, chunk, received_at, source), chunk[-1][1]))
            if len(pending) > 2 * workers:
                future, done = pending.popleft()
                yield (*future.result(), done)
        while pending:
            future, done = pending.popleft()
            yield (*future.result(), done)


def import_events(
    *,
    store: Store,
    path: Path,
    encoding: str | None = None,
    timezone: str = "Asia/Tokyo",
    console: Console | None = None,
    workers: int | None = None,
) -> ImportResult:
    """Import events from `path` (see module doc); returns counts and the rejects file.

    `workers`: processes that parse and validate while this one writes; by default one per core
    for files over 64 MB, none for smaller ones.
    """
    del (
        timezone
    )  # Segment timestamps carry their offset; naive ones are UTC, as Segment reads them.
    started = utcnow()
    result = ImportResult(kind="events", file=str(path))
    rejects = rejects_path(path)
    reject_rows: list[tuple[int, str, str]] = []
    total = path.stat().st_size
    if workers is None:
        workers = (os.cpu_count() or 1) if total > PARALLEL_BYTES else 0
    items = _source_rows(path, encoding)
    progress = Progress(
        TextColumn("[bold]importing {task.fields[name]}"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=console is None or total < 20_000_000,
    )
    with progress:
        task = progress.add_task("import", total=total, name=path.name)
        chunks = _chunks(items, CHUNK)
        pending: list[pa.Table] = []

        def write() -> None:
            table = pa.concat_tables(pending)
            pending.clear()
            inserted = store.insert_events(table)
            result.imported += inserted
            result.duplicates += table.num_rows - inserted

        for table, rejected, done in _normalized(chunks, started, f"import:{path.name}", workers):
            result.read += table.num_rows + len(rejected)
            reject_rows.extend(rejected)
            pending.append(table)
            if sum(t.num_rows for t in pending) >= COMMIT_ROWS:
                write()
            if done:
                progress.update(task, completed=done)
        if pending:
            write()
    result.rejected = len(reject_rows)
    if reject_rows:
        with rejects.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "reason", "data"])
            writer.writerows(reject_rows)
        result.rejects_file = str(rejects)
    elif rejects.exists():
        rejects.unlink()
    with store.transaction() as cur:
        record_import(cur, result, started)
    return result
