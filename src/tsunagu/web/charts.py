"""Figures for the pages, built with plotly's own figure classes (validated) and drawn in the
browser by the plotly.min.js of the same package. Each function returns the figure as JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import plotly.graph_objects as go

from tsunagu.analytics.kpis import Kpis

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


def _layout(**extra: object) -> go.Layout:
    return go.Layout(
        font={"family": FONT, "size": 13},
        margin={"l": 56, "r": 16, "t": 24, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        paper_bgcolor="white",
        plot_bgcolor="white",
        height=300,
        xaxis={"tickformat": "%m/%d", "hoverformat": "%Y-%m-%d"},  # not month names in English
        **extra,
    )


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
