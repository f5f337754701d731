"""`tsunagu funnel` (and the other analyses): the same runners the HTTP API calls."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, FunnelResult, StepResult
from tsunagu.cli.common import app, console, fail, local_or_server, print_json, state
from tsunagu.exceptions import InvalidInput
from tsunagu.remote import RunningServer, call
from tsunagu.store import Store


def _step(text: str) -> dict[str, Any]:
    """A step argument: an event name, `EVENT@channel`, or a JSON object."""
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"steps: {text!r} is not JSON ({exc})", field="steps") from None
        if not isinstance(value, dict):
            raise InvalidInput("steps: a JSON step is an object", field="steps")
        return value
    event, _, channel = text.rpartition("@") if "@" in text else (text, "", "")
    return {"event": event, "channel": channel} if channel else {"event": text}


@app.command("funnel")
def funnel(
    steps: Annotated[
        list[str],
        typer.Argument(
            help='2-10 steps: an event name, "EVENT@channel" (Product Viewed@app), or JSON '
            '({"event": "Order Completed", "channel": "store", "where": {"category": "靴"}})'
        ),
    ],
    window: Annotated[
        str, typer.Option(help="conversion window: 30m, 24h, 7d, 2w, 3months, 2y")
    ] = "7d",
    mode: Annotated[str, typer.Option(help="ordered, strict or any")] = "ordered",
    start: Annotated[
        str | None, typer.Option("--from", help="first day (local), YYYY-MM-DD")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day (local), YYYY-MM-DD")] = None,
    breakdown: Annotated[
        str | None, typer.Option(help="channel, store_id, category, a property, profile.TRAIT")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            help='an event whose customers leave the funnel (as a step; JSON may say "between": '
            "[a, b]); repeatable"
        ),
    ] = None,
    exclusions_mode: Annotated[
        str,
        typer.Option(help="customer (out of the funnel) or attempt (the attempt ends there)"),
    ] = "customer",
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Customers from step to step across channels: conversion, drop-off, time to convert."""
    try:
        body: dict[str, Any] = {
            "steps": [_step(s) for s in steps],
            "window": window,
            "mode": mode,
            "from": start,
            "to": end,
            "breakdown": breakdown,
            "exclusions": [_step(x) for x in exclude or []],
            "exclusions_mode": exclusions_mode,
        }
        query = parse(FunnelQuery, body)
    except InvalidInput as exc:
        raise fail(exc) from None

    from tsunagu.analytics.funnels import run_funnel

    result = _run(
        "/v1/analytics/funnel",
        query.model_dump(mode="json", by_alias=True),
        lambda engine: run_funnel(engine=engine, query=query, timezone=state.settings.timezone),
        FunnelResult,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(_funnel_table(result.steps, f"funnel ({result.mode}, {window})"))
    for group in result.breakdown:
        console.print(_funnel_table(group.steps, f"{breakdown} = {group.value}"))


def _funnel_table(steps: list[StepResult], title: str) -> Table:
    table = Table(title=title)
    for name in ("step", "customers", "from first", "from previous", "drop-off", "median", "p90"):
        table.add_column(name, justify="left" if name == "step" else "right")
    for i, step in enumerate(steps, 1):
        table.add_row(
            f"{i}. {step.label}",
            f"{step.customers:,}",
            f"{step.conversion_from_first:.1%}",
            f"{step.conversion_from_previous:.1%}",
            f"{step.drop_off:,}",
            _duration(step.median_seconds_to_convert),
            _duration(step.p90_seconds_to_convert),
        )
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def fresh_engine_here(store: Store) -> Engine:
    """An engine over `store`'s analytics table, brought up to date (this process holds it)."""
    from tsunagu.analytics.facts import fresh_engine

    settings = state.settings
    return fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)


def _run(path: str, body: dict[str, Any], local: Any, model: Any, *, get: bool = False) -> Any:
    """`local(engine)` on a fresh analytics table, or `path` on the running server (POST with
    `body`, or GET with it as the query)."""

    def here(store: Store) -> Any:
        return local(fresh_engine_here(store))

    def there(server: RunningServer) -> Any:
        if get:
            query = {k: v for k, v in body.items() if v is not None}
            return model.model_validate(call(server, "GET", path, params=query))
        return model.model_validate(call(server, "POST", path, json=body))

    return local_or_server(here, there)


@app.command("retention")
def retention(
    start_event: Annotated[
        str, typer.Argument(help="puts a customer in a cohort (or EVENT@channel)")
    ],
    return_event: Annotated[str, typer.Argument(help="counts as coming back (or EVENT@channel)")],
    grain: Annotated[str, typer.Option(help="day, week or month")] = "week",
    periods: Annotated[int | None, typer.Option(help="periods after the cohort's")] = None,
    start: Annotated[str | None, typer.Option("--from", help="first cohort day (local)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last cohort day (local)")] = None,
    by_channel: Annotated[
        bool, typer.Option("--by-channel", help="cohorts per channel of the first start event")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Retention triangle: cohorts by first start event, returns per day, week or month."""
    from tsunagu.analytics.retention import RetentionQuery, RetentionResult, run_retention

    try:
        query = parse(
            RetentionQuery,
            {
                "start": _step(start_event),
                "return": _step(return_event),
                "grain": grain,
                "periods": periods,
                "from": start,
                "to": end,
                "breakdown": "channel" if by_channel else None,
            },
        )
    except InvalidInput as exc:
        raise fail(exc) from None
    result = _run(
        "/v1/analytics/retention",
        query.model_dump(mode="json", by_alias=True),
        lambda engine: run_retention(engine=engine, query=query),
        RetentionResult,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table(title=f"retention by {result.grain}: {start_event} → {return_event}")
    table.add_column("cohort")
    if by_channel:
        table.add_column("channel")
    table.add_column("customers", justify="right")
    for n in range(1, result.periods + 1):
        table.add_column(f"{n}", justify="right")
    for cohort in result.cohorts:
        cells = [f"{r:.0%}" if r is not None else "" for r in cohort.rates[1:]]
        head = [str(cohort.cohort)] + ([cohort.channel or ""] if by_channel else [])
        table.add_row(*head, f"{cohort.customers:,}", *cells)
    average = [f"{r:.0%}" if r is not None else "" for r in result.average[1:]]
    table.add_row("average", *([""] if by_channel else []), "", *average)
    console.print(table)


@app.command("paths")
def paths(
    event: Annotated[str, typer.Argument(help="the anchor event (or EVENT@channel, or JSON)")],
    before: Annotated[bool, typer.Option("--before", help="what led to it instead")] = False,
    depth: Annotated[int, typer.Option(help="steps to follow")] = 3,
    top: Annotated[int, typer.Option(help="steps kept per level")] = 8,
    within: Annotated[str, typer.Option(help="how far from the anchor: 30m, 1d, 7d")] = "1d",
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """The most frequent steps after (or before) an event, channel included."""
    from tsunagu.analytics.paths import PathsQuery, PathsResult, run_paths

    try:
        query = parse(
            PathsQuery,
            {
                "event": _step(event),
                "direction": "before" if before else "after",
                "depth": depth,
                "top": top,
                "within": within,
            },
        )
    except InvalidInput as exc:
        raise fail(exc) from None
    result = _run(
        "/v1/analytics/paths",
        query.model_dump(mode="json", by_alias=True),
        lambda engine: run_paths(engine=engine, query=query, timezone=state.settings.timezone),
        PathsResult,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table(
        title=f"paths {'before' if before else 'after'} {event} ({result.customers:,} customers)"
    )
    for name in ("from", "to", "customers"):
        table.add_column(name, justify="right" if name == "customers" else "left")
    for link in result.links:
        table.add_row(link.source, link.target, f"{link.customers:,}")
    console.print(table)


@app.command("channels")
def channels(
    start: Annotated[str | None, typer.Option("--from", help="first day (local)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day (local)")] = None,
    ropo_days: Annotated[
        int, typer.Option(help="days from an online view to a store purchase")
    ] = 7,
    showrooming_days: Annotated[
        int, typer.Option(help="days from a store visit to an online purchase")
    ] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Who buys online, in store or both; ROPO, showrooming and the O2O lift."""
    from tsunagu.analytics.channels import ChannelsQuery, ChannelsResult, run_channels

    params = {
        "from": start,
        "to": end,
        "ropo_days": ropo_days,
        "showrooming_days": showrooming_days,
    }
    try:
        query = parse(ChannelsQuery, params)
    except InvalidInput as exc:
        raise fail(exc) from None
    result = _run(
        "/v1/analytics/channels",
        params,
        lambda engine: run_channels(engine=engine, query=query, timezone=state.settings.timezone),
        ChannelsResult,
        get=True,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table(title=f"buyers by channel ({result.buyers:,} buyers, ¥{result.revenue:,})")
    for name in ("segment", "buyers", "share", "revenue", "share of revenue", "spend/buyer"):
        table.add_column(name, justify="left" if name == "segment" else "right")
    for s in result.segments:
        table.add_row(
            s.segment,
            f"{s.buyers:,}",
            f"{s.share_of_buyers:.1%}",
            f"¥{s.revenue:,}",
            f"{s.share_of_revenue:.1%}",
            f"¥{s.spend_per_buyer:,.0f}",
        )
    console.print(table)
    if result.o2o_lift is not None:
        console.print(
            f"O2O lift (omnichannel vs single-channel spend per buyer): {result.o2o_lift:.2f}×"
        )
    for name, b in (("ROPO", result.ropo), ("showrooming", result.showrooming)):
        console.print(
            f"{name}: {b.orders:,} of {b.total:,} orders ({b.rate:.1%}), {b.customers:,} customers"
        )


@app.command("kpis")
def kpis(
    start: Annotated[str | None, typer.Option("--from", help="first day (local)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day (local)")] = None,
    grain: Annotated[str, typer.Option(help="day, week or month")] = "day",
    store_id: Annotated[str | None, typer.Option("--store", help="one store's figures")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """KPIs per period: active customers, orders, revenue, AOV, repeat, new buyers, coupons."""
    from tsunagu.analytics.kpis import KpiQuery, KpiResult, run_kpis

    params = {"from": start, "to": end, "grain": grain, "store_id": store_id}
    try:
        query = parse(KpiQuery, params)
    except InvalidInput as exc:
        raise fail(exc) from None
    result = _run(
        "/v1/analytics/kpis",
        params,
        lambda engine: run_kpis(engine=engine, query=query),
        KpiResult,
        get=True,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table(title=f"KPIs by {result.grain}" + (f" at {store_id}" if store_id else ""))
    for name in (
        "period",
        "active",
        "orders",
        "revenue",
        "AOV",
        "buyers",
        "repeat",
        "new",
        "coupons",
    ):
        table.add_column(name, justify="left" if name == "period" else "right")
    for k in [*result.periods, *result.totals]:
        table.add_row(
            str(k.period) if k.period else "total",
            f"{k.active_customers:,}",
            f"{k.orders:,}",
            f"¥{k.revenue:,}",
            f"¥{k.aov:,.0f}",
            f"{k.buyers:,}",
            f"{k.repeat_rate:.1%}",
            f"{k.new_buyers:,}",
            "-" if k.coupon_redemption_rate is None else f"{k.coupon_redemption_rate:.1%}",
        )
    console.print(table)


ltv_app = typer.Typer(
    help="Lifetime value: BG/NBD and Gamma-Gamma fitted on every channel's purchases.",
    no_args_is_help=True,
)
app.add_typer(ltv_app, name="ltv")


@ltv_app.command("fit")
def ltv_fit(
    horizon_days: Annotated[int, typer.Option(help="days ahead to predict")] = 365,
    unit_days: Annotated[int, typer.Option(help="days in a period of the fit (7: weeks)")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Fit the models on all purchases; keep every customer's expected purchases and value."""
    from tsunagu.analytics.ltv import LtvFit, fit_ltv

    params = {"horizon_days": horizon_days, "unit_days": unit_days}
    result = _run(
        "/v1/analytics/ltv",
        params,
        lambda engine: fit_ltv(engine=engine, store=engine.store, **params),
        LtvFit,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table(title=f"lifetime value, purchases to {result.observation_end}", show_header=False)
    rows = [
        ("customers (repeat)", f"{result.customers:,} ({result.repeat_customers:,})"),
        ("BG/NBD r, alpha", f"{result.r:.4g}, {result.alpha:.4g}"),
        ("BG/NBD a, b", f"{result.a:.4g}, {result.b:.4g}"),
        ("log-likelihood", f"{result.log_likelihood:.2f}"),
    ]
    if result.p is not None:
        rows += [
            ("Gamma-Gamma p, q, v", f"{result.p:.4g}, {result.q:.4g}, {result.v:.4g}"),
            ("log-likelihood", f"{result.gamma_gamma_log_likelihood:.2f}"),
        ]
    rows.append(
        (f"expected purchases, next {horizon_days} days", f"{result.expected_purchases:,.1f}")
    )
    if result.expected_value is not None:
        rows.append((f"expected value, next {horizon_days} days", f"{result.expected_value:,.0f}"))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


@ltv_app.command("evaluate")
def ltv_evaluate(
    calibration_end: Annotated[
        str, typer.Option("--calibration-end", help="last day (local) of the fitting period")
    ],
    unit_days: Annotated[int, typer.Option(help="days in a period of the fit (7: weeks)")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Fit up to a day, predict the purchases after it, and compare with what happened."""
    from tsunagu.analytics.ltv import LtvEvaluation, LtvEvaluationQuery, evaluate_ltv

    try:
        query = parse(
            LtvEvaluationQuery, {"calibration_end": calibration_end, "unit_days": unit_days}
        )
    except InvalidInput as exc:
        raise fail(exc) from None
    result = _run(
        "/v1/analytics/ltv/evaluate",
        query.model_dump(mode="json"),
        lambda engine: evaluate_ltv(engine=engine, **dict(query)),
        LtvEvaluation,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(
        f"BG/NBD fitted to {result.calibration_end}: r={result.r:.4g} alpha={result.alpha:.4g} "
        f"a={result.a:.4g} b={result.b:.4g} (log-likelihood {result.log_likelihood:.2f})"
    )
    table = Table(title=f"repeat purchases {result.calibration_end} → {result.holdout_end}")
    for name in ("purchases in calibration", "customers", "predicted", "actual"):
        table.add_column(name, justify="right")
    for g in result.by_frequency:
        table.add_row(g.label, f"{g.customers:,}", f"{g.predicted:,.1f}", f"{g.actual:,}")
    table.add_row("all", f"{result.customers:,}", f"{result.predicted:,.1f}", f"{result.actual:,}")
    console.print(table)


fans_app = typer.Typer(
    help="Fan levels: relationship strength across channels.", no_args_is_help=True
)
app.add_typer(fans_app, name="fans")


@fans_app.command("compute")
def fans_compute(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="day (local); default the last with data")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Recompute and store every profile's fan level (rules: fan-rules.json in the data dir)."""
    from tsunagu.analytics.fans import FanComputation, compute_fan_levels, load_fan_rules

    def here(store: Store) -> FanComputation:
        fresh_engine_here(store)
        day = date.fromisoformat(as_of) if as_of else None
        rules = load_fan_rules(state.settings.data_dir)
        return compute_fan_levels(store=store, rules=rules, as_of=day)

    def there(server: RunningServer) -> FanComputation:
        params = {"as_of": as_of} if as_of else {}
        return FanComputation.model_validate(
            call(server, "POST", "/v1/analytics/fans/compute", params=params)
        )

    try:
        result = local_or_server(here, there)
    except ValueError as exc:
        raise fail(InvalidInput(f"as_of: {exc}", field="as_of")) from None
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(
        f"fan levels of {result.profiles:,} profiles as of {result.as_of} ({result.seconds:.1f} s)"
    )


@fans_app.command("report")
def fans_report(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="day (local); default the last with data")
    ] = None,
    compare_to: Annotated[
        str | None, typer.Option("--compare-to", help="earlier day to compare with")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """How many customers are at each fan level, and how many moved up or down since a day."""
    from tsunagu.analytics.fans import FanReport, fan_report, load_fan_rules

    try:
        days = [date.fromisoformat(d) if d else None for d in (as_of, compare_to)]
    except ValueError as exc:
        raise fail(InvalidInput(f"as_of / compare_to: {exc}", field="as_of")) from None
    rules = load_fan_rules(state.settings.data_dir)
    result = _run(
        "/v1/analytics/fans",
        {"as_of": as_of, "compare_to": compare_to},
        lambda engine: fan_report(engine=engine, rules=rules, as_of=days[0], compare_to=days[1]),
        FanReport,
        get=True,
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    table = Table(title=f"fan levels as of {result.as_of} ({result.window_days} days)")
    for name in ("level", "customers", "share", "revenue", "share of revenue"):
        table.add_column(name, justify="left" if name == "level" else "right")
    for lv in result.levels:
        table.add_row(
            f"{lv.level} {lv.name} ({lv.name_en})",
            f"{lv.customers:,}",
            f"{lv.share:.1%}",
            f"{lv.revenue:,}",
            f"{lv.share_of_revenue:.1%}",
        )
    console.print(table)
    if result.compare_to:
        console.print(
            f"since {result.compare_to}: {result.moved_up:,} up, {result.moved_down:,} down, "
            f"{result.stayed:,} stayed"
        )


assortment_app = typer.Typer(help="Regional assortment of a store.", no_args_is_help=True)
app.add_typer(assortment_app, name="assortment")


@assortment_app.command("report")
def assortment_report_command(
    store_id: Annotated[str, typer.Option("--store", help="the store")],
    radius_km: Annotated[
        float, typer.Option(help="home stores this near are in the catchment")
    ] = 10.0,
    days: Annotated[int, typer.Option(help="days of purchases")] = 90,
    low_demand: Annotated[int, typer.Option(help="local buyers below this are low demand")] = 2,
    top: Annotated[int, typer.Option(help="products per list")] = 50,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="write both lists to this CSV")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """What the store's neighbourhood buys that it does not stock, and what it stocks that
    the neighbourhood does not buy."""
    from tsunagu.analytics.assortment import (
        AssortmentQuery,
        AssortmentReport,
        assortment_report,
        write_csv,
    )

    params = {
        "store_id": store_id,
        "radius_km": radius_km,
        "days": days,
        "low_demand": low_demand,
        "top": top,
    }
    try:
        query = parse(AssortmentQuery, params)
    except InvalidInput as exc:
        raise fail(exc) from None
    result = _run(
        "/v1/analytics/assortment",
        params,
        lambda engine: assortment_report(store=engine.store, query=query),
        AssortmentReport,
        get=True,
    )
    if csv_file is not None:
        write_csv(result, csv_file)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    console.print(f"{store_id}: {result.catchment_customers:,} customers nearby, last {days} days")
    for title, lines in (
        ("in demand nearby, not stocked", result.missing),
        ("stocked, little demand nearby", result.slow),
    ):
        table = Table(title=title)
        for name in ("sku", "name", "category", "local buyers", "store orders", "on hand"):
            table.add_column(
                name,
                justify="right" if name in ("local buyers", "store orders", "on hand") else "left",
            )
        for line in lines[:20]:
            table.add_row(
                line.sku,
                line.name or "",
                line.category or "",
                f"{line.local_buyers:,}",
                f"{line.store_orders:,}",
                f"{line.on_hand:,}",
            )
        console.print(table)
    if csv_file is not None:
        console.print(f"wrote {csv_file}")
