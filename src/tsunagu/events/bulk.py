"""Bulk event import: Segment messages from JSONL, or flat rows from CSV / Parquet.

Every message goes through the same `normalize()` as the collector. Messages are committed in
batches; a messageId stored before (by an earlier import or the collector) is skipped, so
importing a file twice adds nothing. Rejected lines go to `FILE.rejects.csv`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from tsunagu.events.normalize import EventRow, normalize
from tsunagu.exceptions import InvalidInput, TsunaguError
from tsunagu.store import Store, utcnow
from tsunagu.store.files import (
    ImportResult,
    detect_encoding,
    header_key,
    record_import,
    rejects_path,
)

BATCH = 50_000

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


def _jsonl(path: Path) -> Iterator[tuple[int, int, Any, str | None]]:
    """(line number, bytes read so far, message or None, error) for each non-blank line."""
    with path.open("rb") as fh:
        done = 0
        for number, line in enumerate(fh, start=1):
            done += len(line)
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            try:
                yield number, done, orjson.loads(line), None
            except orjson.JSONDecodeError as exc:
                text = line.decode("utf-8", errors="replace").strip()
                yield number, done, text, f"not valid JSON ({exc})"


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


def _csv_rows(path: Path, encoding: str | None) -> Iterator[tuple[int, int, Any, str | None]]:
    enc = detect_encoding(path, encoding)
    with path.open("r", encoding=enc, errors="replace", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise InvalidInput(f"{path.name}: the file is empty", field="file")
        for row in reader:
            if None in row:
                yield reader.line_num, 0, row, "more values than header columns"
                continue
            yield reader.line_num, 0, flat_to_message(row), None


def _parquet_rows(path: Path) -> Iterator[tuple[int, int, Any, str | None]]:
    import pyarrow.parquet as pq

    number = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
        for row in batch.to_pylist():
            number += 1
            yield number, 0, flat_to_message(row), None


def _source_rows(path: Path, encoding: str | None) -> Iterator[tuple[int, int, Any, str | None]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl(path)
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _csv_rows(path, encoding)
    raise InvalidInput(
        f"file: events import takes .jsonl, .csv or .parquet, not {suffix!r}", field="file"
    )


def import_events(
    *,
    store: Store,
    path: Path,
    encoding: str | None = None,
    timezone: str = "Asia/Tokyo",
    console: Console | None = None,
) -> ImportResult:
    """Import events from `path` (see module doc); returns counts and the rejects file."""
    del (
        timezone
    )  # Segment timestamps carry their offset; naive ones are UTC, as Segment reads them.
    started = utcnow()
    result = ImportResult(kind="events", file=str(path))
    rejects = rejects_path(path)
    reject_rows: list[tuple[int, str, str]] = []
    source = f"import:{path.name}"
    batch: list[EventRow] = []

    def flush() -> None:
        if batch:
            inserted = store.insert_events(batch)
            result.imported += inserted
            result.duplicates += len(batch) - inserted
            batch.clear()

    total = path.stat().st_size
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
        for number, done, raw, error in _source_rows(path, encoding):
            result.read += 1
            if error is None:
                try:
                    batch.append(normalize(raw, received_at=started, source=source))
                except TsunaguError as exc:
                    error = exc.message
            if error is not None:
                text = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
                reject_rows.append((number, error, text[:2000]))
            if len(batch) >= BATCH:
                flush()
                if done:
                    progress.update(task, completed=done)
        flush()
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
