"""`tsunagu segment create|preview|list|members|refresh`: segments defined as JSON files."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from tsunagu.cli.analytics import fresh_engine_here
from tsunagu.cli.common import app, console, err, fail, local_or_server, print_json, state
from tsunagu.exceptions import InvalidInput
from tsunagu.identity.rules import load_rules
from tsunagu.remote import call
from tsunagu.store import Store

segment_app = typer.Typer(help="Segments: who, as data (JSON files).", no_args_is_help=True)
app.add_typer(segment_app, name="segment")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail(InvalidInput(f"file: {path} does not exist", field="file")) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fail(InvalidInput(f"file: {path} is not JSON ({exc})", field="file")) from None


@segment_app.command("preview")
def segment_preview(
    file: Annotated[Path, typer.Argument(help="the segment's JSON (its rule is enough)")],
    as_of: Annotated[
        datetime | None, typer.Option(help="the moment windows count back from (default now)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """How many customers the rule holds, and a few of them."""
    from tsunagu.activation.segments import Preview, preview
    from tsunagu.analytics.filters import parse
    from tsunagu.api.segments import PreviewRequest

    doc = _read(file)
    body = {"rule": doc.get("rule") if isinstance(doc, dict) else None}
    if as_of is not None:
        body["as_of"] = as_of.isoformat()
    try:
        request = parse(PreviewRequest, body)
    except InvalidInput as exc:
        raise fail(exc) from None

    def here(store: Store) -> Preview:
        fresh_engine_here(store)
        return preview(store=store, rule=request.rule, as_of=request.as_of)

    result = local_or_server(
        here, lambda server: Preview(**call(server, "POST", "/v1/segments/preview", json=body))
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(f"{result.customers:,} customers (as of {result.as_of:%Y-%m-%d %H:%M} UTC)")
    table = Table("profile", "member", "name", "fan level")
    for row in result.sample:
        table.add_row(
            row["profile_id"],
            row["member_id"] or "-",
            row["name"] or "-",
            str(row["fan_level"] or "-"),
        )
    console.print(table)


@segment_app.command("create")
def segment_create(
    file: Annotated[Path, typer.Argument(help='{"name": ..., "rule": {...}}')],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Keep a segment and fill it."""
    from tsunagu.activation.membership import create_segment
    from tsunagu.activation.segments import SegmentDefinition
    from tsunagu.analytics.filters import parse

    doc = _read(file)

    def here(store: Store) -> dict[str, Any]:
        fresh_engine_here(store)
        definition = parse(SegmentDefinition, doc)
        rules = load_rules(state.settings.data_dir)
        segment, refreshed = create_segment(store=store, definition=definition, rules=rules)
        return {**dataclasses.asdict(segment), "refresh": dataclasses.asdict(refreshed)}

    made = local_or_server(here, lambda server: call(server, "POST", "/v1/segments", json=doc))
    if as_json:
        print_json(made)
        return
    console.print(f"segment {made['name']} ({made['segment_id']}): {made['members']:,} customers")


@segment_app.command("list")
def segment_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The segments and their member counts as of their last refresh."""
    from tsunagu.activation.membership import list_segments

    rows = local_or_server(
        lambda store: [dataclasses.asdict(s) for s in list_segments(store=store)],
        lambda server: call(server, "GET", "/v1/segments"),
    )
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "customers", "refreshed")
    for s in rows:
        table.add_row(
            s["segment_id"], s["name"], f"{s['members']:,}", str(s["refreshed_at"] or "-")
        )
    console.print(table)


@segment_app.command("members")
def segment_members(
    segment: Annotated[str, typer.Argument(help="the segment's id or name")],
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout, for another tool")] = False,
) -> None:
    """The members, with the identifiers a campaign needs (JSON lines, or CSV)."""
    from tsunagu.activation.membership import members_csv
    from tsunagu.activation.membership import segment_members as members

    rows = local_or_server(
        lambda store: members(store=store, segment_id=segment),
        lambda server: call(server, "GET", f"/v1/segments/{quote(segment)}/members"),
    )
    if as_csv:
        sys.stdout.write(members_csv(rows))
        return
    for row in rows:
        print_json(row)


@segment_app.command("refresh")
def segment_refresh(
    segment: Annotated[str, typer.Argument(help="the segment's id or name")],
) -> None:
    """Members as the rule says now: who entered, who left."""
    from tsunagu.activation.membership import refresh_segment

    def here(store: Store) -> dict[str, Any]:
        fresh_engine_here(store)
        rules = load_rules(state.settings.data_dir)
        return dataclasses.asdict(refresh_segment(store=store, segment_id=segment, rules=rules))

    done = local_or_server(
        here, lambda server: call(server, "POST", f"/v1/segments/{quote(segment)}/refresh")
    )
    err.print(
        f"{done['members']:,} customers: {done['entered']:,} entered, {done['exited']:,} left "
        f"({done['seconds']:.2f} s)"
    )


campaign_app = typer.Typer(
    help="Campaigns, their coupons and their measured effect.", no_args_is_help=True
)
app.add_typer(campaign_app, name="campaign")


@campaign_app.command("create")
def campaign_create(
    name: Annotated[str, typer.Argument(help="e.g. 秋の来店クーポン")],
    channel: Annotated[str | None, typer.Option(help="line, email, app, catalog, ...")] = None,
    window: Annotated[str, typer.Option(help="how long after assignment it counts")] = "14d",
    control: Annotated[float, typer.Option(help="the share of customers held out")] = 0.1,
    segment: Annotated[str | None, typer.Option(help="the segment it goes to (its id)")] = None,
    coupon: Annotated[
        Path | None,
        typer.Option(help="a JSON file of the coupon's terms (value_yen, valid_from, ...)"),
    ] = None,
    purpose: Annotated[
        str, typer.Option(help="marketing (needs opt-in), or service (a reservation ready)")
    ] = "marketing",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a campaign; prints its id."""
    from tsunagu.activation.campaigns import CampaignCreate, create_campaign
    from tsunagu.analytics.filters import parse

    body: dict[str, Any] = {
        "name": name, "window": window, "control_share": control, "purpose": purpose,
    }  # fmt: skip
    if channel is not None:
        body["channel"] = channel
    if segment is not None:
        body["segment_id"] = segment
    if coupon is not None:
        body["coupon"] = _read(coupon)
    try:
        request = parse(CampaignCreate, body)
    except InvalidInput as exc:
        raise fail(exc) from None
    made = local_or_server(
        lambda store: dataclasses.asdict(
            create_campaign(store=store, body=request, timezone=state.settings.timezone)
        ),
        lambda server: call(server, "POST", "/v1/campaigns", json=body),
    )
    if as_json:
        print_json(made)
        return
    console.print(made["campaign_id"])


@campaign_app.command("assign")
def campaign_assign(
    campaign_id: Annotated[str, typer.Argument(help="the campaign's id")],
    file: Annotated[
        Path,
        typer.Argument(help="CSV: variant, assigned_at, and user_id, member_card, email, ..."),
    ],
    encoding: Annotated[
        str | None, typer.Option(help="the file's encoding (found if not given)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Take an assignment made elsewhere (a catalogue mailing, another e-mail tool); rejected
    rows go to FILE.rejects.csv."""
    from tsunagu.activation.assignments import import_assignments

    def here(store: Store) -> dict[str, Any]:
        fresh_engine_here(store)
        done = import_assignments(
            store=store,
            campaign_id=campaign_id,
            path=file.resolve(),
            encoding=encoding,
            timezone=state.settings.timezone,
        )
        return dataclasses.asdict(done)

    def there(server: Any) -> dict[str, Any]:
        answer = call(
            server,
            "POST",
            f"/v1/campaigns/{quote(campaign_id)}/assignments",
            content=file.read_bytes(),
            headers={"content-type": "text/csv"},
        )
        if answer.get("rejects"):
            target = file.with_name(file.name + ".rejects.csv")
            target.write_text(answer.pop("rejects"), encoding="utf-8")
            answer["rejects_file"] = str(target)
        return answer

    if not file.exists():
        raise fail(InvalidInput(f"file: {file} does not exist", field="file"))
    done = local_or_server(here, there)
    if as_json:
        print_json(done)
        return
    err.print(
        f"{done['assigned']:,} assigned, {done['duplicates']:,} already, "
        f"{done['rejected']:,} rejected"
        + (f" (reasons in {done['rejects_file']})" if done.get("rejects_file") else "")
    )
    for variant, n in done["variants"].items():
        console.print(f"{variant}: {n:,}")


@campaign_app.command("report")
def campaign_report(
    campaign_id: Annotated[str, typer.Argument(help="the campaign's id")],
    window: Annotated[
        str | None, typer.Option(help="after each assignment (the campaign's)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each variant against the control: visits, conversions, revenue online and in store."""
    from tsunagu.activation.report import report

    def here(store: Store) -> dict[str, Any]:
        fresh_engine_here(store)
        return report(store=store, campaign_id=campaign_id, window=window)

    query = {"window": window} if window else None
    done = local_or_server(
        here,
        lambda server: call(
            server, "GET", f"/v1/campaigns/{quote(campaign_id)}/report", params=query
        ),
    )
    if as_json:
        print_json(done)
        return
    console.print(f"{done['name']} ({done['campaign_id']}), window {done['window']}")
    table = Table("variant", "customers", "visits", "conversion", "¥/customer", "online", "store")
    for v in done["variants"]:
        table.add_row(
            v["variant"],
            f"{v['customers']:,}",
            f"{v['visit_rate']:.1%}",
            f"{v['conversion_rate']:.1%}",
            f"{v['revenue_per_customer']:,.0f}",
            f"{v['online']['revenue_per_customer']:,.0f}",
            f"{v['store']['revenue_per_customer']:,.0f}",
        )
    console.print(table)
    cuped = {c["variant"]: c["vs_control"] for c in done["cuped"]["variants"]}
    for v in done["variants"]:
        vs = v["vs_control"]
        if not vs:
            continue
        conv, rev = vs["conversion_rate"], vs["revenue_per_customer"]
        adjusted = (cuped.get(v["variant"]) or {}).get("revenue_per_customer")
        console.print(
            f"{v['variant']} vs control: conversion {_points(conv)}; ¥/customer {_yen(rev)}"
            + (f"; with CUPED {_yen(adjusted)}" if adjusted else "")
            + f"; coupons redeemed {v['coupon_redemptions']:,}"
        )
    srm = done["srm"]
    if not srm["ok"]:
        err.print(
            f"[red]sample ratio mismatch (p = {srm['p_value']:.2g}): the variants' sizes are not "
            "the shares meant; the comparison is not to be trusted[/red]"
        )


def _points(d: dict[str, float] | None) -> str:
    if d is None:
        return "-"
    return (
        f"{d['difference'] * 100:+.1f} pt [{d['ci_low'] * 100:+.1f}, {d['ci_high'] * 100:+.1f}] "
        f"p={d['p_value']:.3g}"
    )


def _yen(d: dict[str, float] | None) -> str:
    if d is None:
        return "-"
    return (
        f"{d['difference']:+,.0f} [{d['ci_low']:+,.0f}, {d['ci_high']:+,.0f}] p={d['p_value']:.3g}"
    )


journey_app = typer.Typer(
    help="Journeys: a trigger, waits, conditions, sends, until the goal.", no_args_is_help=True
)
app.add_typer(journey_app, name="journey")


@journey_app.command("create")
def journey_create(
    file: Annotated[
        Path, typer.Argument(help='{"name", "template" and "params", or "trigger" and "steps"}')
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a journey; `tsunagu serve` runs it."""
    from tsunagu.activation.journeys import JourneyCreate, create_journey
    from tsunagu.analytics.filters import parse

    doc = _read(file)
    try:
        body = parse(JourneyCreate, doc)
    except InvalidInput as exc:
        raise fail(exc) from None
    made = local_or_server(
        lambda store: dataclasses.asdict(
            create_journey(store=store, body=body, timezone=state.settings.timezone)
        ),
        lambda server: call(server, "POST", "/v1/journeys", json=doc),
    )
    if as_json:
        print_json(made)
        return
    console.print(
        f"journey {made['name']} ({made['journey_id']}), measured by {made['campaign_id']}"
    )


@journey_app.command("list")
def journey_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The journeys and their customers by status."""
    from tsunagu.activation.journeys import list_journeys

    rows = local_or_server(
        lambda store: [dataclasses.asdict(j) for j in list_journeys(store=store)],
        lambda server: call(server, "GET", "/v1/journeys"),
    )
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "status", "campaign", "customers")
    for j in rows:
        runs = ", ".join(f"{k} {v:,}" for k, v in sorted(j["runs"].items())) or "-"
        table.add_row(j["journey_id"], j["name"], j["status"], j["campaign_id"], runs)
    console.print(table)


def _set_status(journey: str, status: str) -> None:
    from tsunagu.activation.journeys import set_status

    verb = "pause" if status == "paused" else "resume"
    done = local_or_server(
        lambda store: dataclasses.asdict(
            set_status(store=store, journey_id=journey, status=status)  # type: ignore[arg-type]
        ),
        lambda server: call(server, "POST", f"/v1/journeys/{quote(journey)}/{verb}"),
    )
    console.print(f"journey {done['name']} ({done['journey_id']}): {done['status']}")


@journey_app.command("pause")
def journey_pause(journey: Annotated[str, typer.Argument(help="id or name")]) -> None:
    """No one enters and no step runs until resumed."""
    _set_status(journey, "paused")


@journey_app.command("resume")
def journey_resume(journey: Annotated[str, typer.Argument(help="id or name")]) -> None:
    """Triggers count from now again."""
    _set_status(journey, "active")


@journey_app.command("templates")
def journey_templates(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The built-in journeys."""
    from tsunagu.activation.templates import describe

    rows = describe()
    if as_json:
        print_json(rows)
        return
    table = Table("template", "what it does")
    for row in rows:
        table.add_row(row["template"], row["does"])
    console.print(table)
