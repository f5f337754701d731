"""Bulk event import: Segment messages from JSONL, or flat rows from CSV / Parquet.

Every message goes through the same rules as the collector (`message_row`; a CSV or Parquet
row as the message it makes). A JSONL file is read in blocks of whole lines: DuckDB applies the
rules to every line whose shape it decides exactly as `message_row` would (events/rules_sql.py),
`message_row` takes the rest, and the rows go in in the file's order. Messages are committed in
batches; a messageId stored before (by an earlier import or the collector) is skipped, so
importing a file twice adds nothing. Rejected lines go to `FILE.rejects.csv`.
"""

from __future__ import annotations

import csv
import gc
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from queue import Empty, Queue
from typing import Any, TypeVar

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from tsunagu.events.normalize import EventRow, message_row, normalize
from tsunagu.events.rules_sql import decide
from tsunagu.exceptions import InvalidInput, TsunaguError
from tsunagu.store import Store, utcnow
from tsunagu.store.db import EVENT_SCHEMA, events_table
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

T = TypeVar("T")

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


BLOCK_BYTES = 64 * 1024 * 1024
"""JSONL is read, checked and ruled on in blocks of whole lines of about this size."""
_BOM = b"\xef\xbb\xbf"
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])


def _blocks(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(number of the first line, whole lines ending in a newline, bytes read so far)."""
    with open_binary(path) as fh:
        number, rest, done = 1, b"", 0
        while block := fh.read(BLOCK_BYTES):
            if done == 0 and block.startswith(_BOM):
                block = block[len(_BOM) :]
            done += len(block)
            data = rest + block
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield number, data[:cut], done
                number += data.count(b"\n", 0, cut)
        if rest:
            yield number, rest + b"\n", done


@dataclass
class _Lines:
    """A block's lines: those DuckDB may rule on (an Arrow table `n, line`), and every line by
    its number for `message_row` (which reads the rest; a blank line is skipped)."""

    table: pa.Table
    first: int
    data: bytes
    offsets: np.ndarray
    """Where each line of `data` starts, and the end."""
    unread: frozenset[int] = frozenset()
    """Lines kept from DuckDB: not UTF-8, or not JSON as msgspec reads it."""

    def line(self, number: int) -> bytes:
        i = number - self.first
        return self.data[self.offsets[i] : self.offsets[i + 1]]


_NEWLINE, _COMMA, _CLOSE = np.uint8(10), np.uint8(44), ord("]")
_SLICE_ROWS = 16_384
"""Rows of the Arrow slices DuckDB reads in parallel."""


def _lines(first: int, data: bytes) -> _Lines:
    """The lines of a block, each as it is (with its newline: JSON's white space). A block that
    is UTF-8 and every line of it JSON as msgspec reads it (the usual case) goes to DuckDB
    whole, without a copy; otherwise line by line."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE)
    offsets = np.empty(len(ends) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = ends + 1
    numbers = np.arange(first, first + len(ends), dtype=np.int64)
    text = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    # One JSON array of the lines for msgspec to check: `[`, the block, its newlines commas
    # and the last one `]` (one copy, not the two of a replace and a concatenation).
    array = bytearray(b"[")
    array += data
    np.frombuffer(array, dtype=np.uint8)[ends + 1] = _COMMA
    array[-1] = _CLOSE
    try:
        text.validate(full=True)  # UTF-8, in C
        _RAW_LIST.decode(array)
    except (pa.ArrowInvalid, msgspec.DecodeError):
        return _checked_lines(first, data, offsets)
    del array
    table = pa.table({"n": numbers, "line": text})
    return _Lines(pa.Table.from_batches(table.to_batches(_SLICE_ROWS)), first, data, offsets)


def _checked_lines(first: int, data: bytes, offsets: np.ndarray) -> _Lines:
    good: list[int] = []
    unread: set[int] = set()
    for i in range(len(offsets) - 1):
        line = data[offsets[i] : offsets[i + 1]]
        try:
            line.decode()
            if line.strip():
                _RAW_LIST.decode(b"[" + line + b"]")
                good.append(i)
                continue
        except (UnicodeDecodeError, msgspec.DecodeError):
            pass
        unread.add(first + i)
    chosen = np.asarray(good, dtype=np.int64)
    table = pa.table(
        {
            "n": pa.array(first + chosen),
            "line": pa.array(
                [data[offsets[i] : offsets[i + 1]] for i in good], pa.large_binary()
            ).view(pa.large_string()),
        }
    )
    return _Lines(table, first, data, offsets, frozenset(unread))


def _ruled(
    store: Store, lines: _Lines, received_at: datetime, source: str
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """The block's rows in file order (an `n` column first) and its rejects: DuckDB's for the
    lines it decides, `message_row`'s for the rest."""
    cur = store.cursor()
    try:
        ruled = decide(cur, lines.table, received_at=received_at, source=source)
    finally:
        cur.close()
    numbers = ruled.column("n").to_numpy()
    undecided = np.flatnonzero(~ruled.column("fast").to_numpy(zero_copy_only=False))
    rows, accepted, rejected = _python_rows(lines, numbers[undecided].tolist(), received_at, source)
    table = ruled.select(["n", *EVENT_SCHEMA.names]).cast(_NUMBERED)
    if rows:  # message_row's rows in their places (`raw` is the line on both sides)
        slow = events_table(rows)
        mask = np.isin(numbers, accepted)
        table = pa.table(
            [table.column("n")]
            + [
                pc.replace_with_mask(
                    table.column(name).combine_chunks(),
                    pa.array(mask),
                    slow.column(name).combine_chunks(),
                )
                if name != "raw"
                else table.column(name)
                for name in EVENT_SCHEMA.names
            ],
            schema=_NUMBERED,
        )
    if rejected:
        keep = np.ones(len(numbers), dtype=bool)
        keep[np.searchsorted(numbers, [r[0] for r in rejected])] = False
        table = table.filter(pa.array(keep))
    if lines.unread:  # lines DuckDB could not be given
        more, kept, more_rejected = _python_rows(lines, sorted(lines.unread), received_at, source)
        rejected += more_rejected
        unread = events_table(more).add_column(0, "n", pa.array(kept, pa.int64()))
        table = pa.concat_tables([table, unread]).sort_by("n")
    return table, rejected


def _python_rows(
    lines: _Lines, numbers: list[int], received_at: datetime, source: str
) -> tuple[list[EventRow], list[int], list[tuple[int, str, str]]]:
    """`message_row`'s rows for these lines, the numbers of those it made a row of, and its
    rejects; blank lines are skipped."""
    rows: list[EventRow] = []
    kept: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    with gc_paused():
        for number in numbers:
            line = lines.line(number).strip()
            if not line:
                continue
            try:
                rows.append(message_row(line, received_at=received_at, source=source))
                kept.append(number)
            except TsunaguError as exc:
                rejected.append((number, exc.message, line.decode(errors="replace")[:2000]))
    return rows, kept, rejected


_NUMBERED = pa.schema([pa.field("n", pa.int64()), *EVENT_SCHEMA])


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


_JSONL = (".jsonl", ".ndjson", ".json")


def _source_rows(path: Path, encoding: str | None) -> Iterator[Item]:
    suffix = data_suffix(path)
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _csv_rows(path, encoding)
    raise InvalidInput(
        f"file: events import takes .jsonl, .csv or .parquet, not {suffix!r}", field="file"
    )


def _jsonl_tables(
    store: Store, path: Path, received_at: datetime, source: str
) -> Iterator[tuple[pa.Table, list[tuple[int, str, str]], int]]:
    """The rows (without their line numbers) and rejects of each block of a JSONL file, with
    the bytes read so far; the next block is read and ruled on in a thread while the caller
    writes this one (DuckDB lets go of the interpreter while it works)."""

    def ruled() -> Iterator[tuple[pa.Table, list[tuple[int, str, str]], int]]:
        for first, data, done in _blocks(path):
            table, rejected = _ruled(store, _lines(first, data), received_at, source)
            yield table.drop_columns(["n"]), rejected, done

    return _ahead(ruled())


def _ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, the next one made in a thread while the caller works on this one."""
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put((True, item))
            queue.put((False, None))
        except BaseException as exc:  # handed to the caller, raised there
            queue.put((False, exc))

    worker = threading.Thread(target=produce, name="jsonl-ahead", daemon=True)
    worker.start()
    try:
        while True:
            more, item = queue.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # let a producer blocked on a full queue finish
            try:
                queue.get_nowait()
            except Empty:
                worker.join(0.05)


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
    """Normalise a chunk of CSV or Parquet rows into an events table and its rejects (row,
    reason, data). A plain function of its arguments, so a worker process can run it."""
    rows: list[EventRow] = []
    rejected: list[tuple[int, str, str]] = []
    with gc_paused():
        for number, _, raw, error in items:
            if error is None:
                try:
                    rows.append(normalize(raw, received_at=received_at, source=source))
                    continue
                except TsunaguError as exc:
                    error = exc.message
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

    `workers`: for CSV and Parquet, processes that read and validate while this one writes; by
    default one per core for files over 64 MB, none for smaller ones. (JSONL is ruled on by
    DuckDB's threads.)
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
    source = f"import:{path.name}"
    jsonl = data_suffix(path) in _JSONL
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
        pending: list[pa.Table] = []

        def write() -> None:
            table = pa.concat_tables(pending)
            pending.clear()
            inserted = store.insert_events(table)
            result.imported += inserted
            result.duplicates += table.num_rows - inserted

        tables = (
            _jsonl_tables(store, path, started, source)
            if jsonl
            else _normalized(_chunks(_source_rows(path, encoding), CHUNK), started, source, workers)
        )
        for table, rejected, done in tables:
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
