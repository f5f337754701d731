"""Figures of the activation screens, built with plotly's figure classes and drawn in the
browser as the other pages' are (charts.py). Each function returns the figure as JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tsunagu.activation.coupon_tallies import StoreTally
from tsunagu.web.charts import FONT

VARIANT_COLOURS = ("#3b82c4", "#e07b39", "#7c5cc4", "#1a7f4b", "#b5547a")
RATES = ("visit_rate", "conversion_rate")
MONEY = ("revenue_per_customer",)


def _json(figure: go.Figure) -> str:
    return figure.to_json(validate=False, engine="orjson")


def _base(figure: go.Figure, **extra: Any) -> go.Figure:
    figure.update_layout(
        font={"family": FONT, "size": 13},
        margin={"l": 150, "r": 24, "t": 40, "b": 48},
        legend={"orientation": "h", "y": -0.25},
        paper_bgcolor="white",
        plot_bgcolor="white",
        height=320,
        **extra,
    )
    return figure


def _point(
    figure: go.Figure,
    rows: list[tuple[str, dict[str, float]]],
    *,
    scale: float,
    unit: str,
    name: str,
    colour: str,
    col: int,
    show: bool,
) -> None:
    """One treatment's differences as points with their 95% intervals as error bars."""
    figure.add_scatter(
        x=[d["difference"] * scale for _, d in rows],
        y=[label for label, _ in rows],
        mode="markers",
        marker={"size": 11, "color": colour},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": [(d["ci_high"] - d["difference"]) * scale for _, d in rows],
            "arrayminus": [(d["difference"] - d["ci_low"]) * scale for _, d in rows],
            "thickness": 2,
            "width": 6,
        },
        customdata=[[d["ci_low"] * scale, d["ci_high"] * scale, d["p_value"]] for _, d in rows],
        hovertemplate=f"%{{y}}: %{{x:+,.2f}}{unit}<br>95%: [%{{customdata[0]:,.2f}}, "
        f"%{{customdata[1]:,.2f}}]<br>p = %{{customdata[2]:.4f}}<extra>{name}</extra>",
        name=name,
        legendgroup=name,
        showlegend=show,
        row=1,
        col=col,
    )


def differences(report: dict[str, Any], t: Callable[[str], str]) -> str:
    """Each treatment less the control, metric by metric (unadjusted and CUPED-adjusted), as a
    point with its 95% interval: rates in points on the left, revenue per customer in yen on
    the right, a zero line on both."""
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=(t("cmp_rates"), t("cmp_revenue")), horizontal_spacing=0.22
    )
    cuped = {c["variant"]: c.get("vs_control") or {} for c in report["cuped"]["variants"]}
    treated = [v for v in report["variants"] if v["vs_control"]]
    for n, variant in enumerate(treated):
        name = variant["variant"]
        shown = t(f"cmp_v_{name}") if name in ("control", "treatment") else name
        colour = VARIANT_COLOURS[n % len(VARIANT_COLOURS)]
        for col, keys, scale, unit in ((1, RATES, 100.0, " pt"), (2, MONEY, 1.0, " ¥")):
            rows: list[tuple[str, dict[str, float]]] = []
            for key in keys:
                if variant["vs_control"].get(key):
                    rows.append((t(f"cmp_{key}"), variant["vs_control"][key]))
                if cuped.get(name, {}).get(key):
                    rows.append((f"{t(f'cmp_{key}')} (CUPED)", cuped[name][key]))
            if rows:
                _point(figure, rows, scale=scale, unit=unit, name=shown, colour=colour,
                       col=col, show=col == 1)  # fmt: skip
    for col in (1, 2):
        figure.add_vline(x=0, line={"color": "#5b6b7c", "width": 1, "dash": "dot"}, row=1, col=col)
    figure.update_xaxes(zeroline=False, gridcolor="#e6eaef")
    figure.update_xaxes(ticksuffix=" pt", row=1, col=1)
    figure.update_xaxes(tickprefix="¥", tickformat=",d", row=1, col=2)
    figure.update_yaxes(autorange="reversed")
    return _json(_base(figure))


def coupons_per_store(tallies: Sequence[StoreTally], t: Callable[[str], str]) -> str:
    """Coupons issued to each store's customers and redeemed at its till, side by side."""
    names = [s.name or s.store_id or t("cpn_no_home") for s in tallies]
    figure = _base(go.Figure(), barmode="group", yaxis={"tickformat": ",d"})
    figure.update_layout(
        margin={"l": 56, "r": 16, "t": 36, "b": 110},
        legend={"orientation": "h", "y": 1.12, "x": 0},
        height=360,
    )
    for key, label, colour in (
        ("issued", "cmp_issued", "#3b82c4"),
        ("redeemed", "cmp_redeemed", "#e07b39"),
    ):
        figure.add_bar(
            x=names,
            y=[getattr(s, key) for s in tallies],
            name=t(label),
            marker_color=colour,
            hovertemplate="%{x}: %{y:,d}<extra>" + t(label) + "</extra>",
        )
    figure.update_xaxes(type="category", tickangle=-40)
    return _json(figure)
