"""Figures for the pages, built with plotly's own figure classes (validated) and drawn in the
browser by the plotly.min.js of the same package. Each function returns the figure as JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import plotly.graph_objects as go

from tsunagu.analytics.funnels import BreakdownGroup, StepResult
from tsunagu.analytics.kpis import Kpis
from tsunagu.analytics.paths import PathsResult
from tsunagu.analytics.retention import RetentionResult

CHANNEL_COLOURS = {
    "web": "#3b82c4",
    "app": "#7c5cc4",
    "line": "#06c755",
    "store": "#e07b39",
    "email": "#c4a13b",
    "call_center": "#8a8f98",
    "catalog": "#b5547a",
}
FONT = '"Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Yu Gothic", sans-serif'


DAYS = {"tickformat": "%m/%d", "hoverformat": "%Y-%m-%d"}
"""A time axis in days (not month names in English)."""


def _layout(**extra: object) -> go.Layout:
    base: dict[str, object] = {
        "font": {"family": FONT, "size": 13},
        "margin": {"l": 56, "r": 16, "t": 24, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "height": 300,
        "xaxis": DAYS,
    }
    return go.Layout(**{**base, **extra})


def _json(figure: go.Figure) -> str:
    return figure.to_json(validate=False, engine="orjson")


def active_by_channel(periods: Sequence[Kpis], t: Callable[[str], str]) -> str:
    """Active customers per period, a bar per channel side by side."""
    days = [p.period.isoformat() for p in periods if p.period]
    channels = sorted({c for p in periods for c in p.active_by_channel})
    figure = go.Figure(layout=_layout(barmode="group", yaxis={"tickformat": ",d"}))
    for channel in channels:
        figure.add_bar(
            x=days,
            y=[p.active_by_channel.get(channel, 0) for p in periods if p.period],
            name=t(channel),
            marker_color=CHANNEL_COLOURS.get(channel),
        )
    return _json(figure)


def revenue_split(periods: Sequence[Kpis], t: Callable[[str], str]) -> str:
    """Revenue per period, online and in store stacked, in yen."""
    days = [p.period.isoformat() for p in periods if p.period]
    figure = go.Figure(
        layout=_layout(barmode="stack", yaxis={"tickprefix": "¥", "tickformat": ",d"})
    )
    for key, name, colour in (
        ("revenue_online", "online", "#3b82c4"),
        ("revenue_store", "in_store", "#e07b39"),
    ):
        figure.add_bar(
            x=days,
            y=[getattr(p, key) for p in periods if p.period],
            name=t(name),
            marker_color=colour,
            hovertemplate="%{x}: ¥%{y:,d}<extra></extra>",
        )
    return _json(figure)


def funnel_bars(steps: Sequence[StepResult], labels: Sequence[str], t: Callable[[str], str]) -> str:
    """Customers at each step (the bar) with those lost since the previous step stacked above
    it, and the conversion from the first step written on each bar."""
    figure = go.Figure(
        layout=_layout(
            barmode="stack", yaxis={"tickformat": ",d"}, xaxis={"type": "category"}, height=340
        )
    )
    figure.add_bar(
        x=list(labels),
        y=[s.customers for s in steps],
        name=t("fn_converted"),
        marker_color="#3b82c4",
        text=[f"{100 * s.conversion_from_first:.1f}%" for s in steps],
        textposition="inside",
        hovertemplate="%{x}<br>%{y:,d}<extra></extra>",
    )
    figure.add_bar(
        x=list(labels),
        y=[s.drop_off for s in steps],
        name=t("fn_dropped"),
        marker_color="#cfd8e3",
        hovertemplate="%{x}<br>-%{y:,d}<extra></extra>",
    )
    return _json(figure)


def funnel_groups(groups: Sequence[BreakdownGroup], labels: Sequence[str]) -> str:
    """Conversion from the first step per breakdown value, a line of bars per value."""
    figure = go.Figure(
        layout=_layout(
            barmode="group", yaxis={"tickformat": ".0%"}, xaxis={"type": "category"}, height=340
        )
    )
    for group in groups:
        figure.add_bar(
            x=list(labels),
            y=[s.conversion_from_first for s in group.steps],
            name=group.value,
            hovertemplate=f"{group.value}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
        )
    return _json(figure)


def retention_heatmap(result: RetentionResult, t: Callable[[str], str]) -> str:
    """Cohorts (rows, the oldest on top) by period since (columns), coloured by the share that
    came back; a period not yet observed is left blank."""
    unit = t(f"rt_after_{result.grain}")
    columns = [unit.format(n=n) for n in range(result.periods + 1)]
    rows = [
        f"{c.cohort.isoformat()}"
        + (f" {t(c.channel)}" if c.channel else "")
        + f" ({c.customers:,})"
        for c in result.cohorts
    ]
    z = [[None if r is None else r for r in c.rates[1:]] for c in result.cohorts]
    figure = go.Figure(
        layout=_layout(
            height=max(260, 26 * len(rows) + 90),
            xaxis={"side": "top", "type": "category"},
            yaxis={"autorange": "reversed", "type": "category"},
            margin={"l": 170, "r": 16, "t": 40, "b": 16},
        )
    )
    figure.add_heatmap(
        z=z,
        x=columns[1:],
        y=rows,
        colorscale="Blues",
        zmin=0,
        texttemplate="%{z:.1%}",
        hovertemplate="%{y}<br>%{x}: %{z:.1%}<extra></extra>",
        showscale=False,
    )
    return _json(figure)


def paths_sankey(result: PathsResult, t: Callable[[str], str]) -> str:
    """The steps around the anchor as a Sankey: a column per level, links by customers."""
    index = {node.id: i for i, node in enumerate(result.nodes)}
    figure = go.Figure(layout=_layout(height=460, margin={"l": 16, "r": 16, "t": 16, "b": 16}))
    figure.add_sankey(
        arrangement="snap",
        node={
            "label": [f"{n.step} ({n.customers:,})" for n in result.nodes],
            "pad": 14,
            "thickness": 14,
            "color": [CHANNEL_COLOURS.get(_channel_of(n.step), "#8aa4c0") for n in result.nodes],
        },
        link={
            "source": [index[link.source] for link in result.links],
            "target": [index[link.target] for link in result.links],
            "value": [link.customers for link in result.links],
            "color": "rgba(59,130,196,0.25)",
        },
    )
    return _json(figure)


def _channel_of(step: str) -> str:
    """The channel a path step names after its event: "Product Viewed · app"."""
    return step.rsplit(" · ", 1)[-1] if " · " in step else ""


def shares(
    names: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    axis: str = ".0%",
    hover: str = ".1%",
) -> str:
    """Bars side by side per name, one per series (shares by default; `axis` and `hover` are
    d3 formats for other figures)."""
    figure = go.Figure(
        layout=_layout(barmode="group", yaxis={"tickformat": axis}, xaxis={"type": "category"})
    )
    for label, values in series:
        figure.add_bar(
            x=list(names),
            y=list(values),
            name=label,
            hovertemplate="%{x}: %{y:" + hover + "}<extra></extra>",
        )
    return _json(figure)


def movement(
    then: Sequence[str], now: Sequence[str], cells: Sequence[Sequence[int]], t: Callable[[str], str]
) -> str:
    """Customers by level then (rows) and now (columns)."""
    figure = go.Figure(
        layout=_layout(
            height=320,
            xaxis={"title": {"text": t("fan_now")}, "type": "category", "side": "top"},
            yaxis={"title": {"text": t("fan_then")}, "type": "category", "autorange": "reversed"},
            margin={"l": 110, "r": 16, "t": 60, "b": 16},
        )
    )
    figure.add_heatmap(
        z=[list(row) for row in cells],
        x=list(now),
        y=list(then),
        colorscale="Oranges",
        texttemplate="%{z:,d}",
        hovertemplate="%{y} → %{x}: %{z:,d}<extra></extra>",
        showscale=False,
    )
    return _json(figure)


def histogram(labels: Sequence[str], counts: Sequence[int], t: Callable[[str], str]) -> str:
    """Customers per band (pre-binned on the server: the bands are in yen)."""
    figure = go.Figure(
        layout=_layout(yaxis={"tickformat": ",d"}, xaxis={"type": "category"}, bargap=0.05)
    )
    figure.add_bar(
        x=list(labels),
        y=list(counts),
        name=t("fn_customers"),
        marker_color="#3b82c4",
        hovertemplate="%{x}: %{y:,d}<extra></extra>",
    )
    return _json(figure)
