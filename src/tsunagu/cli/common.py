"""What every command shares: the Typer apps, settings from --data-dir, errors, the store or
the server that holds it."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from tsunagu.config import Settings, get_settings
from tsunagu.exceptions import StoreBusy, TsunaguError
from tsunagu.remote import RunningServer, running_server
from tsunagu.store import Store

T = TypeVar("T")


class _App(typer.Typer):
    """The app, turning an error of the project's that no command caught (a rules file that
    does not validate, read before the store is opened) into its message and exit code 2."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TsunaguError as exc:
            err.print(f"[red]error:[/red] {exc.message}", highlight=False)
            raise SystemExit(2) from None


app = _App(
    name="tsunagu",
    help="tsunagu (つなぐ): one customer across online and offline channels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sources_app = typer.Typer(help="Event sources and their write keys.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
keys_app = typer.Typer(
    help="API keys for the HTTP API: create, list, revoke, rotate.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
identity_app = typer.Typer(
    help="One customer across identifiers: build, export, evaluate.", no_args_is_help=True
)
app.add_typer(identity_app, name="identity")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
profile_app = typer.Typer(help="Unified customer profiles.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


class ImportKind(StrEnum):
    events = "events"
    pos = "pos"
    members = "members"
    products = "products"
    stores = "stores"
    inventory = "inventory"


class KeyScope(StrEnum):
    read = "read"
    admin = "admin"
    pos = "pos"


@dataclasses.dataclass
class _State:
    data_dir: Path | None = None

    @property
    def settings(self) -> Settings:
        return get_settings(self.data_dir)


state = _State()


@app.callback()
def main(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="TSUNAGU_DATA_DIR", help="Where the database lives."),
    ] = None,
) -> None:
    state.data_dir = data_dir


def fail(exc: TsunaguError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc.message}", highlight=False)
    return typer.Exit(2)


def local_or_server(local: Callable[[Store], T], remote: Callable[[RunningServer], T]) -> T:
    """Run `local` on the store, or `remote` against the server that holds it."""
    try:
        store = Store.open(state.settings)
    except StoreBusy as busy:
        server = running_server(state.settings.server_file)
        if server is None:
            raise fail(busy) from None
        err.print(f"[dim]the server at {server.url} holds the store; asking it[/dim]")
        try:
            return remote(server)
        except TsunaguError as exc:
            raise fail(exc) from None
    except TsunaguError as exc:  # a data dir it cannot open (its rules file, say)
        raise fail(exc) from None
    return _run(store, local)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")


def local_only(run: Callable[[Store], T]) -> T:
    """Commands that need the store itself (not yet offered by the server's API)."""
    try:
        store = Store.open(state.settings)
    except TsunaguError as exc:
        raise fail(exc) from None
    return _run(store, run)


def _run(store: Store, run: Callable[[Store], T]) -> T:
    """`run` on `store`, closing it; its errors become a message and exit code 2."""
    try:
        with store:
            return run(store)
    except TsunaguError as exc:
        raise fail(exc) from None
