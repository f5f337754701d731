"""`tsunagu funnel` (and the other analyses): the same runners the HTTP API calls."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

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
    window: Annotated[str, typer.Option(help="conversion window: 30m, 24h, 7d, 2w")] = "7d",
    mode: Annotated[str, typer.Option(help="ordered, strict or any")] = "ordered",
    start: Annotated[
        str | None, typer.Option("--from", help="first day (local), YYYY-MM-DD")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day (local), YYYY-MM-DD")] = None,
    breakdown: Annotated[
        str | None, typer.Option(help="channel, store_id, category, a property, profile.TRAIT")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="an event that ends an attempt (as a step); repeatable")
    ] = None,
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
        }
        query = parse(FunnelQuery, body)
    except InvalidInput as exc:
        raise fail(exc) from None

    def local(store: Store) -> FunnelResult:
        from tsunagu.analytics.facts import fresh_engine
        from tsunagu.analytics.funnels import run_funnel

        settings = state.settings
        engine = fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)
        return run_funnel(engine=engine, query=query, timezone=settings.timezone)

    def remote(server: RunningServer) -> FunnelResult:
        answer = call(
            server,
            "POST",
            "/v1/analytics/funnel",
            json=query.model_dump(mode="json", by_alias=True),
        )
        return FunnelResult.model_validate(answer)

    result = local_or_server(local, remote)
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
