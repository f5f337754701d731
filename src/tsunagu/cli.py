"""`tsunagu ...`: a thin shell over the domains (see DESIGN.md for the command contract).

While `tsunagu serve` runs it owns the store (DuckDB has one writer process); commands that need
the store then go through the server's HTTP API on the same machine (see remote.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from tsunagu.config import Settings, get_settings
from tsunagu.exceptions import InvalidInput, StoreBusy, TsunaguError
from tsunagu.remote import RunningServer, call, running_server
from tsunagu.store import Store
from tsunagu.store.files import ImportResult

T = TypeVar("T")

app = typer.Typer(
    name="tsunagu",
    help="tsunagu (つなぐ): one customer across online and offline channels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sources_app = typer.Typer(help="Event sources and their write keys.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
keys_app = typer.Typer(help="API keys (read / admin) for the HTTP API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
identity_app = typer.Typer(
    help="One customer across identifiers: build, export, evaluate.", no_args_is_help=True
)
app.add_typer(identity_app, name="identity")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


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


def _fail(exc: TsunaguError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc.message}", highlight=False)
    return typer.Exit(2)


def _local_or_server(local: Callable[[Store], T], remote: Callable[[RunningServer], T]) -> T:
    """Run `local` on the store, or `remote` against the server that holds it."""
    try:
        store = Store.open(state.settings)
    except StoreBusy as busy:
        server = running_server(state.settings.server_file)
        if server is None:
            raise _fail(busy) from None
        err.print(f"[dim]the server at {server.url} holds the store; asking it[/dim]")
        try:
            return remote(server)
        except TsunaguError as exc:
            raise _fail(exc) from None
    try:
        with store:
            return local(store)
    except TsunaguError as exc:
        raise _fail(exc) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")


@app.command()
def generate(
    customers: Annotated[int, typer.Option(min=1, help="How many people to simulate.")] = 2000,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days of history.")] = 180,
    seed: Annotated[int, typer.Option(help="Same seed, byte-identical files.")] = 42,
    out: Annotated[Path, typer.Option(help="Directory for the files.")] = Path("./demo-data"),
) -> None:
    """Write a synthetic Japanese retailer (stores, products, inventory, members, events, POS, truth)."""
    from rich.progress import Progress

    from tsunagu.demo import generate as run

    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("generating", total=customers)
        summary = run(
            out_dir=out,
            customers=customers,
            days=days,
            seed=seed,
            progress=lambda done: progress.update(task, completed=done),
        )
    err.print(
        f"wrote {out} ({summary.start} .. {summary.end}, JST): "
        + ", ".join(f"{name} {rows:,}" for name, rows in summary.files.items())
    )


@app.command("import")
def import_(
    kind: Annotated[ImportKind, typer.Argument(help="What the file holds.")],
    file: Annotated[Path, typer.Argument(help="CSV, Parquet, or JSONL (events).")],
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding, e.g. cp932; detected when omitted.")
    ] = None,
    store_id: Annotated[
        str | None, typer.Option("--store-id", help="pos: store for exports with no store column.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import a file; rejected rows go to FILE.rejects.csv with the reason, the rest is imported."""
    from tsunagu.imports import run_import

    def local(store: Store) -> ImportResult:
        return run_import(
            store=store,
            kind=kind.value,
            path=file,
            encoding=encoding,
            store_id=store_id,
            timezone=state.settings.timezone,
            progress_console=None if as_json else err,
        )

    def remote(server: RunningServer) -> ImportResult:
        body = {"path": str(file.resolve()), "encoding": encoding, "store_id": store_id}
        return ImportResult(**call(server, "POST", f"/v1/imports/{kind.value}", json=body))

    result = _local_or_server(local, remote)
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    table = Table(title=f"import {kind.value}: {file.name}", show_header=True)
    for column in ("read", "imported", "rejected", "duplicates skipped"):
        table.add_column(column, justify="right")
    table.add_row(
        *(f"{n:,}" for n in (result.read, result.imported, result.rejected, result.duplicates))
    )
    console.print(table)
    for warning in result.warnings:
        err.print(f"[yellow]note:[/yellow] {warning}")
    if result.rejects_file:
        err.print(f"rejected rows and reasons: {result.rejects_file}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the collector, the API and the dashboard."""
    from tsunagu.server import run_server

    try:
        run_server(state.settings, host=host, port=port)
    except TsunaguError as exc:
        raise _fail(exc) from None


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1)] = 2000,
    days: Annotated[int, typer.Option(min=1, max=3650)] = 180,
    seed: Annotated[int, typer.Option()] = 42,
    out: Annotated[Path, typer.Option(help="Directory for the generated files.")] = Path(
        "./demo-data"
    ),
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Generate a sample retailer, import it, create a demo source and serve the dashboard."""
    from tsunagu.events.sources import create_source, list_sources
    from tsunagu.imports import DEMO_ORDER, run_import

    generate(customers=customers, days=days, seed=seed, out=out)
    try:
        store = Store.open(state.settings)
    except TsunaguError as exc:
        raise _fail(exc) from None
    with store:
        for kind, name in DEMO_ORDER:
            result = run_import(
                store=store,
                kind=kind,
                path=out / name,
                timezone=state.settings.timezone,
                progress_console=err,
            )
            err.print(
                f"imported {name}: {result.imported:,} of {result.read:,} rows"
                + (f" ({result.duplicates:,} already there)" if result.duplicates else "")
            )
        from tsunagu.identity.graph import build_graph
        from tsunagu.identity.rules import load_rules

        report = build_graph(store=store, rules=load_rules(state.settings.data_dir))
        err.print(f"identity: {report.identifiers:,} identifiers in {report.profiles:,} profiles")
        api_key_file = state.settings.data_dir / "demo-api-key.txt"
        if not api_key_file.exists():
            from tsunagu.keys import create_key

            api_key_file.write_text(create_key(store=store, name="demo", scope="read")[1] + "\n")
            os.chmod(api_key_file, 0o600)
        api_key = api_key_file.read_text().strip()
        member = store.scalar("SELECT min(member_id) FROM members") or "MEMBER_ID"
        key_file = state.settings.data_dir / "demo-write-key.txt"
        if not key_file.exists():
            taken = {s.name for s in list_sources(store=store)}
            name = "demo" if "demo" not in taken else f"demo-{len(taken) + 1}"
            _, key = create_source(store=store, name=name)
            key_file.write_text(key + "\n")
            os.chmod(key_file, 0o600)
        key = key_file.read_text().strip()
    console.print(
        f"\n[bold]demo write key[/bold]: {key}\n"
        f"send events:  curl -u {key}: -H 'Content-Type: application/json' "
        f'-d \'{{"userId":"{member}","event":"Product Viewed","properties":{{"sku":"P0001"}}}}\' '
        f"http://{host}:{port}/v1/track\n"
        f"dashboard:    http://{host}:{port}/\n"
        f"[bold]demo read API key[/bold]: {api_key}\n"
        f"a profile:    curl -H 'Authorization: Bearer {api_key}' "
        f"'http://{host}:{port}/v1/profiles/lookup?type=user_id&value={member}'\n"
    )
    serve(host=host, port=port)


@sources_app.command("create")
def sources_create(name: Annotated[str, typer.Argument(help="e.g. ec-site, app, pos")]) -> None:
    """Create a source; its write key is printed once and stored hashed."""
    from tsunagu.events.sources import Source, create_source

    def remote(server: RunningServer) -> tuple[Source, str]:
        answer = call(server, "POST", "/v1/sources", json={"name": name})
        key = answer.pop("write_key")
        return Source(**answer), key

    source, key = _local_or_server(lambda store: create_source(store=store, name=name), remote)
    err.print(
        f"source {source.name} ({source.source_id}) created; keep the write key, it is not shown again:"
    )
    console.print(key)


@sources_app.command("list")
def sources_list() -> None:
    """List sources (their keys are not shown: only a prefix)."""
    from tsunagu.events.sources import Source, list_sources

    rows = _local_or_server(
        lambda store: list_sources(store=store),
        lambda server: [Source(**s) for s in call(server, "GET", "/v1/sources")],
    )
    table = Table("name", "source id", "key starts with")
    for s in rows:
        table.add_row(s.name, s.source_id, s.key_prefix + "…")
    console.print(table)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. bi-dashboard")],
    scope: Annotated[
        KeyScope, typer.Option(help="read: GET and analytics; admin: changes and erasure")
    ] = KeyScope.read,
) -> None:
    """Create an API key; it is printed once and stored hashed."""
    from tsunagu.keys import create_key

    def remote(server: RunningServer) -> str:
        return str(
            call(server, "POST", "/v1/keys", json={"name": name, "scope": scope.value})["key"]
        )

    secret = _local_or_server(
        lambda store: create_key(store=store, name=name, scope=scope.value)[1], remote
    )
    err.print(f"{scope.value} key {name!r} created; keep it, it is not shown again:")
    console.print(secret)


def _local_only(run: Callable[[Store], T]) -> T:
    """Commands that need the store itself (not yet offered by the server's API)."""
    try:
        store = Store.open(state.settings)
    except TsunaguError as exc:
        raise _fail(exc) from None
    try:
        with store:
            return run(store)
    except TsunaguError as exc:
        raise _fail(exc) from None


@identity_app.command("build")
def identity_build(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Rebuild the identity graph from every event and member record."""
    from tsunagu.identity.graph import build_graph
    from tsunagu.identity.rules import load_rules

    rules = load_rules(state.settings.data_dir)
    report = _local_only(lambda store: build_graph(store=store, rules=rules))
    if as_json:
        _print_json(dataclasses.asdict(report))
        return
    console.print(
        f"{report.identifiers:,} identifiers in {report.profiles:,} profiles "
        f"({report.records:,} distinct records, {report.seconds:.1f} s); "
        f"{report.refused_links:,} links refused by the merge limits "
        f"(see the identity_audit table)"
    )


@identity_app.command("update")
def identity_update(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Fold events and member changes since the last build or update into the graph."""
    from tsunagu.identity.graph import update_graph
    from tsunagu.identity.rules import load_rules

    rules = load_rules(state.settings.data_dir)
    report = _local_only(lambda store: update_graph(store=store, rules=rules))
    if as_json:
        _print_json(dataclasses.asdict(report))
        return
    if report.rebuilt:
        console.print("no graph yet: built it from scratch")
        return
    console.print(
        f"{report.records:,} new records: {report.new_identifiers:,} new identifiers, "
        f"{report.merged_profiles:,} profiles merged, {report.refused_links:,} links refused"
    )


@identity_app.command("match")
def identity_match(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: record_id plus any of name, name_kana, birth_date, postcode, address, phone, email"
        ),
    ],
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Match at or above this probability.")
    ] = 0.9,
    review_threshold: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Keep pairs from here up to the threshold for review."),
    ] = 0.5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Link records without a shared identifier to members and to each other (Fellegi–Sunter)."""
    from tsunagu.identity.matching import match_records, save_matches
    from tsunagu.identity.rules import load_rules

    if review_threshold > threshold:
        raise _fail(
            InvalidInput("review-threshold: must not exceed --threshold", field="review_threshold")
        )
    rules = load_rules(state.settings.data_dir)

    def run(store: Store) -> Any:
        result = match_records(
            store=store,
            path=file,
            rules=rules,
            threshold=threshold,
            review_threshold=review_threshold,
        )
        save_matches(store=store, file=str(file.resolve()), result=result)
        return result

    result = _local_only(run)
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    kinds = {
        k: sum(1 for m in result.matches if m.matched == k) for k in ("member", "records", "new")
    }
    console.print(
        f"{result.records:,} records: {kinds['member']:,} linked to members, "
        f"{kinds['records']:,} to other records, {kinds['new']:,} new; "
        f"{len(result.review):,} pairs to review (tsunagu identity review)"
    )


@identity_app.command("review")
def identity_review(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Pairs scored just below the match threshold, for a person to decide."""
    from tsunagu.identity.matching import review_candidates

    rows = _local_only(lambda store: review_candidates(store=store))
    if as_json:
        _print_json(rows)
        return
    table = Table("left", "right", "probability", "weight", "file")
    for r in rows:
        table.add_row(
            r["left"],
            r["right"],
            f"{r['match_probability']:.3f}",
            f"{r['match_weight']:.1f}",
            r["file"],
        )
    console.print(table)


@identity_app.command("export")
def identity_export(file: Annotated[Path, typer.Argument(help="CSV to write")]) -> None:
    """Write identifier_type,identifier_value,profile_id for every identifier."""
    from tsunagu.identity.evaluate import export_identifiers

    rows = _local_only(lambda store: export_identifiers(store=store, path=file))
    err.print(f"wrote {rows:,} identifiers to {file}")


@identity_app.command("evaluate")
def identity_evaluate(
    truth: Annotated[Path, typer.Option(help="identifier_type,identifier_value,person_id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pairwise precision, recall and F1 of the profiles against a truth file."""
    from tsunagu.identity.evaluate import evaluate
    from tsunagu.identity.rules import load_rules

    rules = load_rules(state.settings.data_dir)
    result = _local_only(lambda store: evaluate(store=store, truth=truth, rules=rules))
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    table = Table("", "value")
    table.add_row("identifiers", f"{result.identifiers:,}")
    table.add_row("true pairs", f"{result.true_pairs:,}")
    table.add_row("predicted pairs", f"{result.predicted_pairs:,}")
    table.add_row("correct pairs", f"{result.correct_pairs:,}")
    table.add_row("precision", f"{result.precision:.4f}")
    table.add_row("recall", f"{result.recall:.4f}")
    table.add_row("F1", f"{result.f1:.4f}")
    for kind, figures in result.by_type.items():
        table.add_row(f"recall of pairs with {kind}", f"{figures['recall']:.4f}")
    console.print(table)


profile_app = typer.Typer(help="Unified customer profiles.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@profile_app.command("show")
def profile_show(
    identifier: Annotated[
        str,
        typer.Argument(help="Any identifier: a member id, card, e-mail, phone, ... or TYPE:VALUE"),
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A customer's identifiers, traits and cross-channel figures, from any identifier."""
    from tsunagu.identity.profiles import get_profile, lookup
    from tsunagu.identity.rules import TYPES, load_rules

    rules = load_rules(state.settings.data_dir)
    kind, _, rest = identifier.partition(":")
    kind_arg, value = (kind, rest) if rest and kind in TYPES else (None, identifier)

    def run(store: Store) -> Any:
        return get_profile(
            store=store, profile_id=lookup(store=store, rules=rules, kind=kind_arg, value=value)
        )

    profile = _local_only(run)
    if as_json:
        _print_json(dataclasses.asdict(profile))
        return
    table = Table(title=f"profile {profile.profile_id}", show_header=False)
    for kind_name, values in profile.identifiers.items():
        table.add_row(kind_name, ", ".join(values))
    for key, item in {**profile.traits, **profile.computed}.items():
        table.add_row(key, str(item))
    console.print(table)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Counts of members, stores, products and events by channel."""
    from tsunagu.catalog.overview import Overview, overview

    o = _local_or_server(
        lambda store: overview(store=store),
        lambda server: Overview(**call(server, "GET", "/v1/status")),
    )
    if as_json:
        _print_json(dataclasses.asdict(o))
        return
    table = Table("", "count")
    for label, value in (("members", o.members), ("stores", o.stores), ("products", o.products)):
        table.add_row(label, f"{value:,}")
    for channel, count in o.events_by_channel:
        table.add_row(f"events: {channel}", f"{count:,}")
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
