"""Reading import files into DuckDB: encodings, column names as real exports spell them, typed
parsing with a reason for every row that does not parse, and the rejects file.

An import kind is described by a `TableSpec` (its columns, their types and the other names they
go by); `stage()` loads a CSV or Parquet file into a temporary table `_in` with one typed column
per spec column, `_row` (the row's number in the file, the header being row 1) and `_reason`
(why the row cannot be imported, or NULL).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Literal, cast
from zoneinfo import ZoneInfo

import duckdb
from charset_normalizer import from_bytes

from tsunagu.exceptions import InvalidInput
from tsunagu.store.db import count
from tsunagu.store.sql import identifier as sql_identifier
from tsunagu.store.sql import literal as sql_literal

Kind = Literal["text", "int", "number", "bool", "date", "timestamp", "float"]

# Formats tills and back-office exports write, tried in order after ISO 8601.
_TIME_FORMATS = [
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y%m%d%H%M%S",
    "%Y%m%d %H%M%S",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y/%m/%d",
    "%Y%m%d",
    "%m/%d/%Y",
]
_DATE_FORMATS = ["%Y/%m/%d", "%Y%m%d", "%m/%d/%Y", "%Y.%m.%d"]
_TRUE = ("true", "t", "1", "yes", "y", "はい", "有", "○", "◯")
_FALSE = ("false", "f", "0", "no", "n", "いいえ", "無", "×", "")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind = "text"
    required: bool = False
    aliases: tuple[str, ...] = ()
    check: str | None = None
    """SQL condition on the parsed value `{v}` that must hold, e.g. `{v} >= 0`."""
    check_reason: str = "out of range"
    max_length: int = 1000
    """Longer text is refused: a megabyte in a name is a broken export, not a name."""
    may_be_absent: bool = False
    """A required column that a file may lack altogether (the importer fills it in); when
    present, its cells are still required."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    kind: str
    columns: tuple[Column, ...]
    keep_extra: bool = True
    """Columns the spec does not name are kept as a JSON object in `_extra`."""


@dataclass(slots=True)
class Staged:
    """What `stage()` loaded: the mapping it used and how many rows it read."""

    rows: int
    mapping: dict[str, str]
    extra: list[str]
    raw_refs: dict[str, str]
    """Spec column → the column of `_in` holding its text as read (for the rejects file)."""
    malformed: list[tuple[int, str, str]] = field(default_factory=list)
    """Rows the CSV parser could not split: (row, reason, text)."""
    temp_file: Path | None = None


def header_key(name: str) -> str:
    """Compare headers loosely: NFKC, lower case, no spaces, `-`/`_`/`.` ignored."""
    name = unicodedata.normalize("NFKC", name).strip().lower().lstrip("\ufeff")
    return re.sub(r"[\s_\-.・]", "", name)


def map_headers(headers: Sequence[str], spec: TableSpec) -> tuple[dict[str, str], list[str]]:
    """Spec column → file header, and the headers no spec column claims."""
    by_key = {header_key(h): h for h in headers}
    mapping: dict[str, str] = {}
    for column in spec.columns:
        for candidate in (column.name, *column.aliases):
            found = by_key.get(header_key(candidate))
            if found is not None and found not in mapping.values():
                mapping[column.name] = found
                break
    extra = [h for h in headers if h not in mapping.values() and h.strip()]
    return mapping, extra


def detect_encoding(path: Path, given: str | None) -> str:
    """`given`, or UTF-8 when the start of the file decodes as it, or what charset_normalizer finds
    (Shift_JIS / cp932 exports are common in Japan)."""
    if given:
        try:
            name = codecs.lookup(given).name
        except LookupError:
            raise InvalidInput(f"encoding: unknown encoding {given!r}", field="encoding") from None
        _header_reads_as(path, name)
        return name
    with open_binary(path) as fh:
        sample = fh.read(1 << 20)
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(sample) - 4:  # a character cut at the end of the sample
            return "utf-8"
    best = from_bytes(
        sample, cp_isolation=["cp932", "shift_jis", "euc_jp", "iso2022_jp", "utf_16"]
    ).best()
    if best is None:
        return "cp932"
    name = codecs.lookup(best.encoding).name
    return "cp932" if name in ("shift_jis",) else name


def _header_reads_as(path: Path, encoding: str) -> None:
    """Refuse a file whose header is not in the encoding it was said to be in (every column name
    would be read wrong), naming the encoding it reads as."""
    with open_binary(path) as fh:
        header = fh.readline(1 << 16)
    try:
        header.decode(encoding)
    except UnicodeDecodeError as exc:
        guess = detect_encoding(path, None)
        raise InvalidInput(
            f"encoding: the header is not {encoding} (byte {header[exc.start]:#04x} at "
            f"{exc.start})" + (f"; it reads as {guess}" if guess != encoding else ""),
            field="encoding",
        ) from None


def transcode(path: Path, encoding: str, workdir: Path) -> Path:
    """A UTF-8 copy of `path` (DuckDB reads UTF-8 only without extensions); bad bytes become U+FFFD."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{path.name}.utf8.csv"
    with (
        open_text(path, encoding) as src,
        out.open("w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(1 << 22):
            dst.write(chunk)
    return out


def _stray_carriage_returns(path: Path) -> bool:
    """Whether the file has a carriage return that does not end a line (CR LF)."""
    with open_binary(path) as fh:
        tail = b""
        while chunk := fh.read(1 << 24):
            block = tail + chunk
            if block.count(b"\r") != block.count(b"\r\n") + block.endswith(b"\r"):
                return True
            tail = b"\r" if block.endswith(b"\r") else b""
    return tail == b"\r"


def _line_feeds_in_cells(path: Path, delim: str, workdir: Path) -> Path:
    """A copy of the CSV whose cells' carriage returns are line feeds (rows as Python's csv
    reads them, one to one)."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{path.name}.lf.csv"
    with open_text(path, "utf-8") as src, out.open("w", encoding="utf-8", newline="") as dst:
        writer = csv.writer(dst, delimiter=delim, lineterminator="\n")
        for row in csv.reader(src, delimiter=delim):
            writer.writerow([cell.replace("\r\n", "\n").replace("\r", "\n") for cell in row])
    return out


def _csv_headers(path: Path) -> list[str]:
    with open_text(path, "utf-8") as fh:
        sample = fh.read(1 << 16)
    if not sample.strip():
        raise InvalidInput(f"{path.name}: the file is empty", field="file")
    first = next(csv.reader([sample.splitlines()[0]], delimiter=_delimiter(sample)), [])
    return [h.lstrip("\ufeff") for h in first]


def _delimiter(sample: str) -> str:
    first_line = sample.splitlines()[0] if sample else ""
    return max([",", "\t", ";", "|"], key=first_line.count)


def fixed_utc_offset(timezone: str) -> timedelta | None:
    """The zone's UTC offset if it has kept one offset since 1990 (Asia/Tokyo has), else None.

    A fixed offset turns a local time into UTC by subtraction, much faster than a time-zone
    lookup per row.
    """
    zone = ZoneInfo(timezone)
    offsets = {
        datetime(year, month, 15, tzinfo=zone).utcoffset()
        for year in range(1990, 2041)
        for month in (1, 4, 7, 10)
    }
    return offsets.pop() if len(offsets) == 1 else None


def _parse_expr(column: Column, raw: str, timezone: str) -> str:
    """SQL turning the text column `raw` (trimmed, NULL when empty) into the column's type, NULL
    when it does not parse."""
    # Full-width digits and signs (０１２, －), thousands separators and yen signs are normal
    # in Japanese spreadsheets; the plain form is tried first because it is the common one.
    num = f"translate(replace(replace({raw}, ',', ''), '¥', ''), '０１２３４５６７８９－．＋，', '0123456789-.+')"
    if column.kind == "text":
        return raw
    if column.kind == "int":
        # Not try_cast(... AS BIGINT) on decimals: DuckDB rounds "2.5" to 3. "12.0" is whole.
        # CASE, not coalesce: DuckDB evaluates every argument of coalesce on every row, and
        # the decimal fallback costs ten times the plain cast.
        plain = f"CASE WHEN strpos({raw}, '.') = 0 THEN try_cast({raw} AS BIGINT) END"
        dec = f"try_cast({num} AS DECIMAL(38, 6))"
        return (
            f"CASE WHEN {plain} IS NOT NULL THEN {plain} "
            f"WHEN {dec} = trunc({dec}) THEN try_cast({dec} AS BIGINT) END"  # past BIGINT: NULL
        )
    if column.kind in ("number", "float"):
        return f"coalesce(try_cast({raw} AS DOUBLE), try_cast({num} AS DOUBLE))"
    if column.kind == "bool":
        t = ", ".join(sql_literal(v) for v in _TRUE)
        f = ", ".join(sql_literal(v) for v in _FALSE if v)
        return (
            f"CASE WHEN lower({raw}) IN ({t}) THEN true "
            f"WHEN lower({raw}) IN ({f}) THEN false ELSE NULL END"
        )
    if column.kind == "date":
        fmts = "[" + ", ".join(sql_literal(f) for f in _DATE_FORMATS) + "]"
        return f"coalesce(try_cast({raw} AS DATE), try_strptime({raw}, {fmts})::DATE)"
    if column.kind == "timestamp":
        fmts = "[" + ", ".join(sql_literal(f) for f in _TIME_FORMATS) + "]"
        local = f"coalesce(try_cast({raw} AS TIMESTAMP), try_strptime({raw}, {fmts}))"
        offset = fixed_utc_offset(timezone)
        if offset is not None:
            to_utc = f"({local} - INTERVAL {int(offset.total_seconds())} SECOND)"
        else:
            to_utc = f"(({local} AT TIME ZONE {sql_literal(timezone)}) AT TIME ZONE 'UTC')"
        # With an offset (Z, +09:00): as given. Without: local time of the retailer's zone.
        return (
            f"CASE WHEN regexp_matches({raw}, ':\\d\\d(\\.\\d+)?\\s?(Z|[+-]\\d\\d(:?\\d\\d)?)$') "
            f"THEN try_cast({raw} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' ELSE {to_utc} END"
        )
    raise AssertionError(column.kind)


_KIND_WORDS = {
    "int": "a whole number",
    "number": "a number",
    "float": "a number",
    "bool": "true or false",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "a date and time",
}


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it is gzip (`.gz`)."""
    if path.suffix.lower() == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def open_text(path: Path, encoding: str) -> IO[str]:
    return io.TextIOWrapper(open_binary(path), encoding=encoding, errors="replace", newline="")


def data_suffix(path: Path) -> str:
    """`.csv` for data.csv and data.csv.gz."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _file_format(path: Path) -> str:
    suffix = data_suffix(path)
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".xlsx", ".xls", ".xlsm", ".numbers"):
        raise InvalidInput(
            f"file: {path.name} is a spreadsheet; save it as CSV (UTF-8 or Shift_JIS) and import that",
            field="file",
        )
    return "csv"


def stage(
    cur: duckdb.DuckDBPyConnection,
    path: Path,
    spec: TableSpec,
    *,
    encoding: str | None = None,
    timezone: str = "Asia/Tokyo",
    workdir: Path,
    defaults: dict[str, str] | None = None,
    extra_reasons: Callable[[dict[str, str]], list[tuple[str, str]]] | None = None,
) -> Staged:
    """Load `path` into the temp table `_in` (see module doc). `defaults` fills spec columns the
    file lacks with a constant. `extra_reasons` adds (SQL condition, reason) checks over the
    parsed columns (given the mapping), for rules that span columns."""
    if not path.exists():
        raise InvalidInput(f"file: {path} does not exist", field="file")
    fmt = _file_format(path)
    temp_file: Path | None = None
    malformed: list[tuple[int, str, str]] = []
    if fmt == "parquet":
        import pyarrow.parquet as pq

        headers = list(pq.read_schema(path).names)
        source = f"read_parquet({sql_literal(str(path))}, file_row_number = true)"
    elif fmt == "csv":
        enc = detect_encoding(path, encoding)
        if enc not in ("utf-8", "ascii"):
            temp_file = path = transcode(path, enc, workdir)
        headers = _csv_headers(path)
        if len(set(headers)) != len(headers):
            dupes = sorted({h for h in headers if headers.count(h) > 1})
            raise InvalidInput(f"header: column {dupes[0]!r} appears twice", field="header")
        with open_text(path, "utf-8") as fh:
            delim = _delimiter(fh.read(1 << 16))
        if _stray_carriage_returns(path):
            # DuckDB's strict reader refuses a carriage return inside a quoted cell (Excel and
            # some tills write them); Python's reader takes them: a copy with line feeds.
            copy = _line_feeds_in_cells(path, delim, workdir)
            if temp_file is not None:
                temp_file.unlink(missing_ok=True)
            temp_file = path = copy
        columns = ", ".join(f"{sql_literal(h)}: 'VARCHAR'" for h in headers)
        source = (
            f"read_csv({sql_literal(str(path))}, header = true, delim = {sql_literal(delim)}, "
            "quote = '\"', escape = '\"', store_rejects = true, strict_mode = true, "
            f"null_padding = false, auto_detect = false, columns = {{{columns}}})"
        )
    else:
        raise InvalidInput(
            f"file: {spec.kind} imports take CSV or Parquet, not {path.suffix}", field="file"
        )

    mapping, extra = map_headers(headers, spec)
    defaults = defaults or {}
    missing = [
        c.name
        for c in spec.columns
        if c.required and not c.may_be_absent and c.name not in mapping and c.name not in defaults
    ]
    if missing:
        names = ", ".join(missing)
        raise InvalidInput(
            f"header: required column {names} not found (the file has: {', '.join(headers)})",
            field=missing[0],
        )

    # Two steps so that each cell is trimmed once however often the parsers look at it.
    raw_selects = ["_row"]
    selects = ["_row"]
    raw_refs: dict[str, str] = {}
    reasons: list[str] = []
    for column in spec.columns:
        if column.name in mapping:
            raw = f"nullif(trim(CAST({sql_identifier(mapping[column.name])} AS VARCHAR)), '')"
        elif column.name in defaults:
            raw = sql_literal(defaults[column.name])
        else:
            raw = "CAST(NULL AS VARCHAR)"
        raw_name = sql_identifier("_raw_" + column.name)
        raw_selects.append(f"{raw} AS {raw_name}")
        if column.kind == "text":  # the text is the value: keep one copy
            selects.append(f"{raw_name} AS {sql_identifier(column.name)}")
            raw_refs[column.name] = sql_identifier(column.name)
        else:
            selects.append(
                f"{_parse_expr(column, raw_name, timezone)} AS {sql_identifier(column.name)}"
            )
            selects.append(raw_name)
            raw_refs[column.name] = raw_name
    if spec.keep_extra and extra:
        pairs = ", ".join(f"{sql_literal(h)}, {sql_identifier(h)}" for h in extra)
        raw_selects.append(f"json_object({pairs}) AS _extra")
    else:
        raw_selects.append("CAST(NULL AS JSON) AS _extra")
    selects.append("_extra")

    row_expr = "file_row_number + 2" if fmt == "parquet" else "row_number() OVER () + 1"
    try:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _rawcols AS SELECT {', '.join(raw_selects)} "
            f"FROM (SELECT {row_expr} AS _row, * FROM {source})"
        )
    except duckdb.InvalidInputException as exc:
        message = str(exc).splitlines()[0]
        raise InvalidInput(f"file: {path.name} cannot be read ({message})", field="file") from None
    if fmt == "csv":
        malformed = _malformed_rows(cur)
        if malformed:
            _renumber(cur, [row for row, _, _ in malformed])

    for column in spec.columns:
        name = sql_identifier(column.name)
        raw = raw_refs[column.name]
        label = column.name
        if column.required and (column.name in mapping or column.name in defaults):
            reasons.append(f"WHEN {raw} IS NULL THEN {sql_literal(label + ': required')}")
        reasons.append(
            f"WHEN length({raw}) > {column.max_length} THEN "
            f"{sql_literal(f'{label}: longer than {column.max_length:,} characters')}"
        )
        if column.kind != "text":
            why = f"{label}: not {_KIND_WORDS[column.kind]}: "
            reasons.append(
                f"WHEN {raw} IS NOT NULL AND {name} IS NULL THEN {sql_literal(why)} || left({raw}, 100)"
            )
        if column.check:
            cond = column.check.format(v=name)
            reasons.append(
                f"WHEN {name} IS NOT NULL AND NOT ({cond}) THEN "
                f"{sql_literal(label + ': ' + column.check_reason + ': ')} || left({raw}, 100)"
            )
    for cond, reason in extra_reasons(mapping) if extra_reasons else []:
        reasons.append(f"WHEN {cond} THEN {sql_literal(reason)}")
    reason_sql = f"CASE {' '.join(reasons)} ELSE NULL END" if reasons else "NULL"
    # Parsed values are materialised before the reasons look at them: in one statement DuckDB
    # would parse each cell again for every reason that mentions it.
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS SELECT {', '.join(selects)} FROM _rawcols")
    cur.execute("DROP TABLE _rawcols")
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE _in AS SELECT *, {reason_sql} AS _reason FROM _typed"
    )
    cur.execute("DROP TABLE _typed")
    rows = count(cur, "SELECT count(*) FROM _in")
    return Staged(
        rows=rows,
        mapping=mapping,
        extra=extra,
        raw_refs=raw_refs,
        malformed=malformed,
        temp_file=temp_file,
    )


def _malformed_rows(cur: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
    try:
        rows = cur.execute(
            "SELECT DISTINCT line, error_type, error_message, csv_line FROM reject_errors ORDER BY line"
        ).fetchall()
        cur.execute("DELETE FROM reject_errors")
        cur.execute("DELETE FROM reject_scans")
    except duckdb.CatalogException:
        return []
    seen: dict[int, tuple[int, str, str]] = {}
    for line, error_type, message, text in rows:
        seen.setdefault(int(line), (int(line), f"{str(error_type).lower()}: {message}", text or ""))
    return list(seen.values())


def _renumber(cur: duckdb.DuckDBPyConnection, rejected_lines: list[int]) -> None:
    """Give rows after a line the CSV parser dropped their real place in the file.

    Row k (1-based, `_row` = k + 1) comes after the i-th dropped line r_i (0-based i) exactly
    when `_row` >= r_i - i, so it moves down by the number of such i.
    """
    bounds = ", ".join(str(r - i) for i, r in enumerate(sorted(rejected_lines)))
    cur.execute(
        f"UPDATE _rawcols SET _row = _row + "
        f"(SELECT count(*) FROM unnest([{bounds}]) AS t(b) WHERE t.b <= _rawcols._row)"
    )


def write_rejects(
    cur: duckdb.DuckDBPyConnection,
    target: Path,
    *,
    malformed: Sequence[tuple[int, str, str]] = (),
    where: str = "_reason IS NOT NULL",
    columns: dict[str, str] | None = None,
) -> int:
    """Write rejected rows (row number, reason, the row as read) to `target`; returns the count.

    Removes an old rejects file when there is nothing to reject, so a stale one never misleads.
    """
    raw_cols = ", ".join(
        f"{ref} AS {sql_identifier(name)}" for name, ref in (columns or {}).items()
    )
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE _rejects AS SELECT _row AS row, _reason AS reason"
        f"{', ' + raw_cols if raw_cols else ''} FROM _in WHERE {where}"
    )
    for row, reason, text in malformed:
        cur.execute(
            "INSERT INTO _rejects (row, reason) VALUES (?, ?)", [row, f"{reason}: {text[:500]}"]
        )
    rejected = count(cur, "SELECT count(*) FROM _rejects")
    if rejected:
        cur.execute(
            f"COPY (SELECT * FROM _rejects ORDER BY row) TO {sql_literal(str(target))} (HEADER, DELIMITER ',')"
        )
    elif target.exists():
        target.unlink()
    cur.execute("DROP TABLE _rejects")
    return rejected


@dataclass(slots=True)
class ImportResult:
    """What an import did; printed by the CLI and returned by the API."""

    kind: str
    file: str
    read: int = 0
    imported: int = 0
    rejected: int = 0
    duplicates: int = 0
    suppressed: int = 0
    """Rows of erased people, left out."""
    rejects_file: str | None = None
    warnings: list[str] = field(default_factory=list)


def rejects_path(path: Path) -> Path:
    """`FILE.rejects.csv` beside the imported file."""
    return path.with_name(path.name + ".rejects.csv")


def record_import(cur: duckdb.DuckDBPyConnection, result: ImportResult, started_at: object) -> None:
    import uuid

    from tsunagu.store.db import utcnow

    cur.execute(
        "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            uuid.uuid4().hex,
            result.kind,
            result.file,
            result.read,
            result.imported,
            result.rejected,
            result.duplicates,
            started_at,
            utcnow(),
        ],
    )
