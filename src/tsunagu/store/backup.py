"""A backup of the whole data dir, taken while the server runs, and its restore.

The database is copied by DuckDB itself (`COPY FROM DATABASE` into a new database file) inside
one read transaction: a consistent snapshot, every table as of one moment, while the collector
goes on committing. The data dir's other files (identity and fan rules, the link secret that
signs tracked links, trained models, direct-mail files) are copied beside it. `backup.json`,
written last, lists every file with its size and SHA-256 and every table with its rows: a
directory without it is not a complete backup, and `restore` refuses it, or one whose files do not
match it.

`restore` needs the store to itself (stop the server first). The database it replaces is kept
beside it as `tsunagu.duckdb.replaced-TIME`, so a restore never loses data either.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tsunagu import __version__
from tsunagu.exceptions import InvalidInput
from tsunagu.store.db import Store, utcnow
from tsunagu.store.schema import SCHEMA_VERSION
from tsunagu.store.sql import identifier as sql_identifier
from tsunagu.store.sql import literal as sql_literal

MANIFEST = "backup.json"
DATABASE = "tsunagu.duckdb"
_LEFT_OUT = {DATABASE, DATABASE + ".wal", "server.json", "tmp", MANIFEST}
"""Not copied as files: the database (copied by DuckDB), the running server's file, uploads
in progress."""


@dataclass(slots=True)
class BackupResult:
    directory: str
    created_at: datetime
    schema_version: int
    tables: dict[str, int]
    files: int
    bytes: int
    seconds: float = 0.0


@dataclass(slots=True)
class RestoreResult:
    data_dir: str
    backup_created_at: str
    schema_version: int
    tables: dict[str, int]
    files: int
    replaced: str | None
    """Where the database that was there before now is."""
    warnings: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _other_files(data_dir: Path) -> list[Path]:
    """The data dir's files besides the database, as paths relative to it."""
    found = []
    for root, dirs, files in os.walk(data_dir):
        rel_root = Path(root).relative_to(data_dir)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d not in _LEFT_OUT]
        for name in files:
            rel = rel_root / name
            if rel_root == Path(".") and (name in _LEFT_OUT or ".replaced-" in name):
                continue
            found.append(rel)
    return sorted(found)


def _empty_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"dir: {target} exists and is not an empty directory", field="dir")
    target.mkdir(parents=True, exist_ok=True)


def backup(*, store: Store, data_dir: Path, target: Path) -> BackupResult:
    """Copy the store and the data dir's files into `target` (new or empty)."""
    started = time.perf_counter()
    target = target.resolve()
    if target == data_dir.resolve() or data_dir.resolve() in target.parents:
        raise InvalidInput("dir: must be outside the data dir", field="dir")
    _empty_target(target)
    created = utcnow()
    cur = store.cursor()
    alias = "tsunagu_backup_" + secrets.token_hex(4)
    try:
        main = cur.execute("SELECT current_database()").fetchall()[0][0]
        cur.execute(f"ATTACH {sql_literal(str(target / DATABASE))} AS {alias}")
        try:
            cur.execute("BEGIN TRANSACTION")  # one snapshot of every table
            try:
                cur.execute(f"COPY FROM DATABASE {sql_identifier(main)} TO {alias}")
                tables = _counts(cur, alias)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        finally:
            cur.execute(f"DETACH {alias}")
    finally:
        cur.close()
    files: dict[str, dict[str, Any]] = {}
    for rel in _other_files(data_dir):
        copied = target / "files" / rel
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / rel, copied)
        files[f"files/{rel.as_posix()}"] = {
            "size": copied.stat().st_size,
            "sha256": _sha256(copied),
        }
    db = target / DATABASE
    files[DATABASE] = {"size": db.stat().st_size, "sha256": _sha256(db)}
    manifest = {
        "format": 1,
        "created_at": created.isoformat() + "Z",
        "tsunagu_version": __version__,
        "schema_version": store.schema_version,
        "tables": tables,
        "files": files,
    }
    partial = target / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync(partial)
    partial.rename(target / MANIFEST)  # last: only now is it a backup
    return BackupResult(
        directory=str(target),
        created_at=created,
        schema_version=store.schema_version,
        tables=tables,
        files=len(files),
        bytes=sum(f["size"] for f in files.values()),
        seconds=round(time.perf_counter() - started, 3),
    )


def _counts(cur: Any, catalog: str) -> dict[str, int]:
    names = [
        name
        for (name,) in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1",
            [catalog],
        ).fetchall()
    ]
    return {
        name: int(
            cur.execute(
                f"SELECT count(*) FROM {sql_identifier(catalog)}.main.{sql_identifier(name)}"
            ).fetchall()[0][0]
        )
        for name in names
    }


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    """The backup's manifest, its files checked against it (size and SHA-256)."""
    path = backup_dir / MANIFEST
    if not path.is_file():
        raise InvalidInput(
            f"dir: {backup_dir} is not a complete backup ({MANIFEST} is missing)", field="dir"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = manifest["files"]
        version = int(manifest["schema_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            f"dir: {MANIFEST} is not a backup manifest ({exc})", field="dir"
        ) from None
    if version > SCHEMA_VERSION:
        raise InvalidInput(
            f"dir: the backup's schema is version {version}, newer than this tsunagu's "
            f"{SCHEMA_VERSION}: restore it with the tsunagu that made it ({manifest.get('tsunagu_version')})",
            field="dir",
        )
    for rel, expected in files.items():
        file = backup_dir / rel
        if not file.is_file():
            raise InvalidInput(f"dir: {rel} is missing from the backup", field="dir")
        if file.stat().st_size != expected["size"] or _sha256(file) != expected["sha256"]:
            raise InvalidInput(f"dir: {rel} does not match the backup's manifest", field="dir")
    if DATABASE not in files:
        raise InvalidInput(f"dir: the backup has no {DATABASE}", field="dir")
    return manifest


def restore(*, backup_dir: Path, data_dir: Path) -> RestoreResult:
    """Put the backup in `data_dir`: the database, then the other files. The store must not be
    open elsewhere (StoreBusy names who holds it)."""
    manifest = read_manifest(backup_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    current = data_dir / DATABASE
    replaced: Path | None = None
    if current.exists():
        Store(current).close()  # StoreBusy while a server (or another command) has it open
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        replaced = data_dir / f"{DATABASE}.replaced-{stamp}"
        current.rename(replaced)
        wal = data_dir / (DATABASE + ".wal")
        if wal.exists():
            wal.rename(data_dir / f"{DATABASE}.wal.replaced-{stamp}")
    staged = data_dir / (DATABASE + ".restoring")
    shutil.copy2(backup_dir / DATABASE, staged)
    _fsync(staged)
    staged.rename(current)
    files = [rel for rel in manifest["files"] if rel.startswith("files/")]
    for rel in files:
        destination = data_dir / rel.removeprefix("files/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(backup_dir / rel, destination)
    with Store(current) as store:  # migrates a backup of an older schema
        cur = store.cursor()
        try:
            catalog = cur.execute("SELECT current_database()").fetchall()[0][0]
            tables = _counts(cur, catalog)
        finally:
            cur.close()
        version = store.schema_version
    warnings = []
    for name, rows in manifest["tables"].items():
        if tables.get(name) != rows:
            warnings.append(f"{name}: {tables.get(name)} rows restored, the backup lists {rows}")
    if warnings and int(manifest["schema_version"]) == version:
        raise InvalidInput(
            "dir: the restored tables differ from the backup: " + "; ".join(warnings), field="dir"
        )
    return RestoreResult(
        data_dir=str(data_dir),
        backup_created_at=manifest["created_at"],
        schema_version=version,
        tables=tables,
        files=len(files),
        replaced=str(replaced) if replaced else None,
        warnings=warnings,
    )
