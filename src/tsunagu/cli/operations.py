"""`tsunagu backup DIR` and `tsunagu restore DIR`: the whole data dir, while the server runs
(through it) or not."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from tsunagu.cli.common import app, err, fail, local_or_server, print_json, state
from tsunagu.exceptions import StoreBusy, TsunaguError
from tsunagu.remote import RunningServer, call, running_server


@app.command("backup")
def backup_command(
    directory: Annotated[Path, typer.Argument(help="A new or empty directory for the backup")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Back up the whole data dir: a consistent snapshot of the database and its files, taken
    while the server runs (through it) or not."""
    from tsunagu.store.backup import BackupResult, backup

    target = directory.resolve()

    def remote(server: RunningServer) -> BackupResult:
        answer = call(server, "POST", "/v1/backup", json={"dir": str(target)})
        return BackupResult(**answer)

    done = local_or_server(
        lambda store: backup(store=store, data_dir=state.settings.data_dir, target=target), remote
    )
    if as_json:
        print_json(dataclasses.asdict(done))
        return
    rows = sum(done.tables.values())
    err.print(
        f"backed up {len(done.tables)} tables ({rows:,} rows) and {done.files} files, "
        f"{done.bytes / 2**20:,.1f} MB, into {done.directory} in {done.seconds:.1f} s"
    )


@app.command("restore")
def restore_command(
    directory: Annotated[Path, typer.Argument(help="A directory `tsunagu backup` wrote")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Restore a backup into the data dir (the server must be stopped); the database it
    replaces is kept beside it."""
    from tsunagu.store.backup import restore

    settings = state.settings
    try:
        done = restore(backup_dir=directory.resolve(), data_dir=settings.data_dir)
    except StoreBusy as busy:
        server = running_server(settings.server_file)
        if server is None:
            raise fail(busy) from None
        raise fail(
            StoreBusy(
                f"a tsunagu server (pid {server.pid}) holds the store: stop it, then restore "
                "(a restore replaces the database it has open)"
            )
        ) from None
    except TsunaguError as exc:
        raise fail(exc) from None
    if as_json:
        print_json(dataclasses.asdict(done))
        return
    for warning in done.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    rows = sum(done.tables.values())
    err.print(
        f"restored the backup of {done.backup_created_at} into {done.data_dir}: "
        f"{len(done.tables)} tables, {rows:,} rows, {done.files} files"
        + (f"; the database that was there is now {done.replaced}" if done.replaced else "")
    )
