"""Getting data in and the server up: generate, import, serve, demo, sources, status."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from tsunagu.cli.common import (
    ImportKind,
    app,
    console,
    err,
    fail,
    local_or_server,
    print_json,
    sources_app,
    state,
)
from tsunagu.exceptions import InvalidInput, TsunaguError
from tsunagu.remote import RunningServer, call
from tsunagu.store import Store
from tsunagu.store.files import ImportResult


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

    result = local_or_server(local, remote)
    if as_json:
        print_json(dataclasses.asdict(result))
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
        raise fail(exc) from None


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
        raise fail(exc) from None
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
        from tsunagu.analytics.facts import ensure_fresh
        from tsunagu.analytics.fans import compute_fan_levels, load_fan_rules

        analysed = ensure_fresh(
            store=store,
            rules=load_rules(state.settings.data_dir),
            timezone=state.settings.timezone,
        )
        fans = compute_fan_levels(store=store, rules=load_fan_rules(state.settings.data_dir))
        err.print(
            f"analytics: {analysed.events:,} events of customers; fan levels of {fans.profiles:,} "
            "profiles"
        )
        from tsunagu.analytics.engine import Engine
        from tsunagu.analytics.ltv import fit_ltv

        try:  # the LTV screen and the profiles show each customer's predicted value
            fitted = fit_ltv(engine=Engine(store), store=store)
            err.print(f"LTV: fitted on {fitted.customers:,} customers")
        except InvalidInput as exc:
            err.print(f"LTV: not fitted ({exc.message})")
        campaign_id = _demo_campaign(store, out)
        api_key_file = state.settings.data_dir / "demo-api-key.txt"
        if not api_key_file.exists():
            from tsunagu.keys import create_key

            api_key_file.write_text(create_key(store=store, name="demo", scope="read")[1] + "\n")
            os.chmod(api_key_file, 0o600)
        api_key = api_key_file.read_text().strip()
        # The example shows a customer with something to show: one who buys online and in store.
        member = (
            store.scalar(
                "SELECT n.value FROM identity_nodes n JOIN profile_traits t USING (profile_id) "
                "WHERE n.type = 'user_id' ORDER BY (t.orders_store > 0 AND t.orders_online > 0) "
                "DESC, t.events DESC, n.value LIMIT 1"
            )
            or store.scalar("SELECT min(member_id) FROM members")
            or "MEMBER_ID"
        )
        sku = store.scalar("SELECT min(sku) FROM products") or "SKU"
        shop = store.scalar("SELECT min(store_id) FROM stores") or "STORE_ID"
        stocked = store.scalar("SELECT min(sku) FROM inventory WHERE quantity > 0") or sku
        key_file = state.settings.data_dir / "demo-write-key.txt"
        if not key_file.exists():
            taken = {s.name for s in list_sources(store=store)}
            name = "demo" if "demo" not in taken else f"demo-{len(taken) + 1}"
            # The dashboard's own pages may send from the browser.
            pages = {f"http://{host}:{port}", f"http://localhost:{port}"}
            _, key = create_source(store=store, name=name, origins=pages)
            key_file.write_text(key + "\n")
            os.chmod(key_file, 0o600)
        key = key_file.read_text().strip()
        logins = _demo_users(store, state.settings.data_dir / "demo-users.txt", shop)
    console.print(
        "\n[bold]sign in[/bold] at "
        f"http://{host}:{port}/login (the demo's users, kept in demo-users.txt):\n"
        + "".join(f"  {role:<9} {login} / {password}\n" for role, login, password in logins)
    )
    console.print(
        f"[bold]demo write key[/bold]: {key}\n"
        f"send events:  curl -u {key}: -H 'Content-Type: application/json' "
        f'-d \'{{"userId":"{member}","event":"Product Viewed","properties":{{"sku":"{sku}"}}}}\' '
        f"http://{host}:{port}/v1/track\n"
        f"dashboard:    http://{host}:{port}/\n"
        f"[bold]demo read API key[/bold]: {api_key}\n"
        f"a profile:    curl -H 'Authorization: Bearer {api_key}' "
        f"'http://{host}:{port}/v1/profiles/lookup?type=user_id&value={member}'\n"
        f"a funnel:     curl -H 'Authorization: Bearer {api_key}' -H 'Content-Type: "
        'application/json\' -d \'{"steps": [{"event": "Product Viewed", "channel": '
        '"app"}, {"event": "Store Visited"}, {"event": "Order Completed", '
        f'"channel": "store"}}], "window": "14d"}}\' http://{host}:{port}/v1/analytics/funnel\n'
        f"stock near:   curl -H 'Authorization: Bearer {api_key}' "
        f"'http://{host}:{port}/v1/inventory/availability?sku={stocked}&lat=35.6812&lon=139.7671'\n"
        f"staff screen: curl -H 'Authorization: Bearer {api_key}' "
        f"'http://{host}:{port}/v1/clienteling?store_id={shop}&qr=user_id:{member}'\n"
        + (
            f"a campaign:   curl -H 'Authorization: Bearer {api_key}' "
            f"'http://{host}:{port}/v1/campaigns/{campaign_id}/report'\n"
            if campaign_id
            else ""
        )
    )
    settings = state.settings
    if "TSUNAGU_LOG_FORMAT" not in os.environ:  # someone at a terminal reads the demo's log
        settings = settings.model_copy(update={"log_format": "text"})
    from tsunagu.server import run_server

    try:
        run_server(settings, host=host, port=port)
    except TsunaguError as exc:
        raise fail(exc) from None


def _demo_users(store: Store, path: Path, shop: str) -> list[tuple[str, str, str]]:
    """A user for each role (staff of the first store), once; (role, login, password)."""
    import secrets

    from tsunagu.users import create_user

    if not path.exists():
        made = []
        for role in ("admin", "marketer", "analyst", "staff"):
            login, password = f"demo-{role}", secrets.token_urlsafe(9)
            create_user(
                store=store, login=login, role=role, password=password,
                store_id=shop if role == "staff" else None,
            )  # fmt: skip
            made.append(f"{role}\t{login}\t{password}\n")
        path.write_text("".join(made), encoding="utf-8")
        os.chmod(path, 0o600)
    return [
        (role, login, password)
        for role, login, password in (
            line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line
        )
    ]


def _demo_campaign(store: Store, out: Path) -> str | None:
    """The sample's randomised catalogue campaign, with its assignment, once."""
    import json

    from tsunagu.activation.assignments import import_assignments
    from tsunagu.activation.campaigns import CampaignCreate, create_campaign

    truth_file, assigned = out / "campaign_truth.json", out / "campaign_assignments.csv"
    if not truth_file.exists() or not assigned.exists():
        return None
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    if truth.get("starts_at") is None:
        return None
    found = store.scalar("SELECT min(campaign_id) FROM campaigns WHERE name = ?", [truth["name"]])
    if found:
        return str(found)
    body = CampaignCreate(name=truth["name"], channel="catalog", window=truth["window"],
                          control_share=truth["control_share"], treatments=["catalog"])  # fmt: skip
    made = create_campaign(store=store, body=body, timezone=state.settings.timezone)
    done = import_assignments(store=store, campaign_id=made.campaign_id, path=assigned,
                              timezone=state.settings.timezone)  # fmt: skip
    err.print(f"campaign {made.name}: {done.assigned:,} customers assigned ({made.campaign_id})")
    return made.campaign_id


@sources_app.command("create")
def sources_create(
    name: Annotated[str, typer.Argument(help="e.g. ec-site, app, pos")],
    origin: Annotated[
        list[str] | None,
        typer.Option(
            help="a web origin whose browsers may send with the key (https://shop.example.jp, "
            "https://*.example.jp, or * for any); repeatable"
        ),
    ] = None,
) -> None:
    """Create a source; its write key is printed once and stored hashed."""
    from tsunagu.events.sources import Source, create_source

    origins = origin or []

    def remote(server: RunningServer) -> tuple[Source, str]:
        answer = call(server, "POST", "/v1/sources", json={"name": name, "origins": origins})
        key = answer.pop("write_key")
        return _source(answer), key

    source, key = local_or_server(
        lambda store: create_source(store=store, name=name, origins=origins), remote
    )
    allowed = ", ".join(source.origins) or "none (server-side clients only)"
    err.print(
        f"source {source.name} ({source.source_id}) created; browsers of {allowed}; keep the "
        "write key, it is not shown again:"
    )
    console.print(key)


@sources_app.command("origins")
def sources_origins(
    name: Annotated[str, typer.Argument(help="the source")],
    origins: Annotated[
        list[str] | None,
        typer.Argument(help="the web origins it accepts browsers from (none: no browser)"),
    ] = None,
) -> None:
    """Set the web origins whose browsers may send with a source's key (replacing the list)."""
    from tsunagu.events.sources import set_origins

    allowed = origins or []
    source = local_or_server(
        lambda store: set_origins(store=store, name=name, origins=allowed),
        lambda server: _source(
            call(server, "PUT", f"/v1/sources/{quote(name)}/origins", json={"origins": allowed})
        ),
    )
    err.print(f"source {source.name}: browsers of {', '.join(source.origins) or 'no origin'}")


def _source(answer: dict[str, Any]) -> Any:
    from tsunagu.events.sources import Source

    fields = {k: answer[k] for k in ("source_id", "name", "key_prefix")}
    return Source(**fields, origins=tuple(answer.get("origins") or ()))


@sources_app.command("list")
def sources_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List sources (their keys are not shown: only a prefix), the origins they accept and,
    from a running server, the requests of other origins it refused."""
    from tsunagu.events.sources import list_sources

    rows = local_or_server(
        lambda store: [(s, {}) for s in list_sources(store=store)],
        lambda server: [
            (_source(s), s.get("refused", {})) for s in call(server, "GET", "/v1/sources")
        ],
    )
    if as_json:
        print_json([{**dataclasses.asdict(s), "refused": refused} for s, refused in rows])
        return
    table = Table("name", "source id", "key starts with", "browser origins", "refused")
    for s, refused in rows:
        table.add_row(
            s.name,
            s.source_id,
            s.key_prefix + "…",
            "\n".join(s.origins) or "-",
            "\n".join(f"{o}: {n:,}" for o, n in refused.items()) or "-",
        )
    console.print(table)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Counts of members, stores, products and events by channel."""
    from tsunagu.catalog.overview import Overview, overview

    o = local_or_server(
        lambda store: overview(store=store),
        lambda server: Overview(**call(server, "GET", "/v1/status")),
    )
    if as_json:
        print_json(dataclasses.asdict(o))
        return
    table = Table("", "count")
    for label, value in (("members", o.members), ("stores", o.stores), ("products", o.products)):
        table.add_row(label, f"{value:,}")
    for channel, count in o.events_by_channel:
        table.add_row(f"events: {channel}", f"{count:,}")
    console.print(table)
