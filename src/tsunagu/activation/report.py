"""A campaign's measured effect: per variant, what its customers did in the window after each
one's assignment, and each treatment against the control (stats.py).

The definitions (docs/activation.md):
- a customer counts in the variant they were assigned, from `assigned_at` to `assigned_at` +
  the window;
- conversion: at least one "Order Completed" on any channel in that time; revenue: those
  orders' revenue, split online (every channel but the store) and in store;
- visit: at least one event of the customer's own on the web, the app or LINE in that time
  (what the retailer sent, or saw of its message, does not count: events.model.RETAILER_EVENTS);
- orders before the assignment or after the window do not count;
- coupon redemptions: the campaign's coupons redeemed (not voided) by the variant's customers;
- CUPED: the covariate is each customer's revenue in the pre-period before their assignment.

One SQL statement reads every assigned customer's events once and returns a row of sums per
variant; nothing per customer reaches Python.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tsunagu.activation import stats
from tsunagu.activation.campaigns import CONTROL, Campaign, get_campaign
from tsunagu.analytics.filters import window_seconds
from tsunagu.events.model import RETAILER_EVENTS
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store
from tsunagu.store.sql import literal

PRE_PERIOD = "90d"
"""How far before each assignment CUPED's covariate (the customer's revenue) looks."""
VISIT_CHANNELS = ("web", "app", "line")

_SUMS = """
WITH a AS (
    SELECT profile_id, variant, assigned_at,
           assigned_at + to_seconds(?) AS until, assigned_at - to_seconds(?) AS since
    FROM campaign_assignments WHERE campaign_id = ?
),
e AS (
    SELECT a.profile_id, x.ts >= a.assigned_at AS after, x.channel,
           x.event = 'Order Completed' AS ordered, coalesce(x.revenue, 0) AS revenue,
           x.channel IN ({visit}) AND coalesce(x.event NOT IN ({sent}), true) AS visit
    FROM a JOIN analytics_profiles p USING (profile_id)
    JOIN analytics_events x ON x.pid = p.pid AND x.ts >= a.since AND x.ts < a.until
),
c AS (
    SELECT a.variant,
        coalesce(bool_or(after AND visit), false)::INT AS v,
        coalesce(bool_or(after AND ordered), false)::INT AS o,
        coalesce(bool_or(after AND ordered AND channel <> 'store'), false)::INT AS oo,
        coalesce(bool_or(after AND ordered AND channel = 'store'), false)::INT AS os,
        coalesce(sum(revenue) FILTER (after AND ordered), 0) AS r,
        coalesce(sum(revenue) FILTER (after AND ordered AND channel <> 'store'), 0) AS ro,
        coalesce(sum(revenue) FILTER (after AND ordered AND channel = 'store'), 0) AS rs,
        coalesce(sum(revenue) FILTER (NOT after AND ordered), 0) AS x
    FROM a LEFT JOIN e USING (profile_id)
    GROUP BY a.profile_id, a.variant
)
SELECT variant, count(*) AS n,
    sum(v), sum(o), sum(oo), sum(os),
    sum(r), sum(r * r), sum(ro), sum(ro * ro), sum(rs), sum(rs * rs),
    sum(x), sum(x * x), sum(x * r), sum(x * o)
FROM c GROUP BY variant ORDER BY variant = 'control' DESC, variant
"""


def report(
    *,
    store: Store,
    campaign_id: str,
    window: str | int | None = None,
    pre_period: str | int = PRE_PERIOD,
) -> dict[str, Any]:
    """The report's answer (docs/activation.md; the CLI's --json prints the same)."""
    campaign = get_campaign(store=store, campaign_id=campaign_id)
    seconds = window_seconds(window) if window is not None else campaign.window_seconds
    try:
        pre = window_seconds(pre_period)
    except InvalidInput as exc:
        raise InvalidInput(
            str(exc).replace("window:", "pre_period:", 1), field="pre_period"
        ) from None
    # The pre-period ends where the window starts: one scan reads both.
    sql = _SUMS.format(
        visit=", ".join(map(literal, VISIT_CHANNELS)), sent=", ".join(map(literal, RETAILER_EVENTS))
    )
    rows = store.query(sql, [seconds, pre, campaign_id])
    redeemed = _redemptions(store, campaign_id)
    variants = [_variant(row, redeemed.get(row[0], 0)) for row in rows]
    by_name = {v["variant"]: v for v in variants}
    moments = {row[0]: _moments(row) for row in rows}
    control = moments.get(CONTROL)
    for v in variants:
        v["vs_control"] = (
            None
            if control is None or v["variant"] == CONTROL
            else {
                key: _diff(stats.difference(moments[v["variant"]][key], control[key]))
                for key in ("visit_rate", "conversion_rate", "revenue_per_customer")
            }
        )
    return {
        "campaign_id": campaign.campaign_id,
        "name": campaign.name,
        "window": _days(seconds),
        "window_seconds": seconds,
        "customers": sum(v["customers"] for v in variants),
        "variants": variants,
        "srm": _srm(campaign, by_name),
        "cuped": _cuped(moments, pre),
        "coupons": _coupons(store, campaign_id),
    }


def _variant(row: tuple[Any, ...], redemptions: int) -> dict[str, Any]:
    variant, n, v, o, oo, os_, r, _, ro, _, rs = row[:11]
    n = int(n)

    def part(conversions: int, revenue: float) -> dict[str, Any]:
        return {
            "conversions": int(conversions),
            "conversion_rate": conversions / n if n else 0.0,
            "revenue": round(revenue),
            "revenue_per_customer": revenue / n if n else 0.0,
        }

    return {
        "variant": variant,
        "customers": n,
        "visits": int(v),
        "visit_rate": v / n if n else 0.0,
        **part(o, r),
        "online": part(oo, ro),
        "store": part(os_, rs),
        "coupon_redemptions": redemptions,
    }


def _moments(row: tuple[Any, ...]) -> dict[str, stats.Moments]:
    _, n, v, o, _, _, r, rr, _, _, _, _, x, xx, xr, xo = row
    n = int(n)
    # A 0/1 outcome's sum of squares is its sum.
    return {
        "visit_rate": stats.Moments(n, float(v), float(v)),
        "conversion_rate": stats.Moments(n, float(o), float(o), float(x), float(xx), float(xo)),
        "revenue_per_customer": stats.Moments(
            n, float(r), float(rr), float(x), float(xx), float(xr)
        ),
    }


def _diff(d: stats.Difference | None) -> dict[str, float] | None:
    return dataclasses.asdict(d) if d is not None else None


def _srm(campaign: Campaign, variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The control at the campaign's share; the rest split evenly among the other variants
    (the campaign's treatments, or the names an imported assignment used)."""
    names = list(variants)
    others = [n for n in names if n != CONTROL]
    control_share = campaign.control_share if CONTROL in variants else 0.0
    expected = {
        n: control_share if n == CONTROL else (1 - control_share) / len(others) for n in names
    }
    p, ok = stats.srm([variants[n]["customers"] for n in names], [expected[n] for n in names])
    return {"p_value": p, "ok": ok, "expected_shares": expected}


def _cuped(moments: dict[str, dict[str, stats.Moments]], pre: int) -> dict[str, Any]:
    names = list(moments)
    out: dict[str, Any] = {
        "covariate": "revenue_before_assignment",
        "pre_period": _days(pre),
        "theta": {},
        "variants": [{"variant": n, "vs_control": None} for n in names],
    }
    for key in ("conversion_rate", "revenue_per_customer"):
        theta, adjusted = stats.cuped([moments[n][key] for n in names])
        out["theta"][key] = theta
        by_name = dict(zip(names, adjusted, strict=True))
        for entry in out["variants"]:
            entry[key] = by_name[entry["variant"]].mean
            if CONTROL in by_name and entry["variant"] != CONTROL:
                entry["vs_control"] = entry["vs_control"] or {}
                entry["vs_control"][key] = _diff(
                    stats.difference(by_name[entry["variant"]], by_name[CONTROL])
                )
    return out


def _redemptions(store: Store, campaign_id: str) -> dict[str, int]:
    return dict(
        store.query(
            "SELECT a.variant, count(*) FROM coupons c JOIN campaign_assignments a "
            "ON a.campaign_id = c.campaign_id AND a.profile_id = c.profile_id "
            "WHERE c.campaign_id = ? AND c.redemption_id IS NOT NULL AND c.voided_at IS NULL "
            "GROUP BY a.variant",
            [campaign_id],
        )
    )


def _coupons(store: Store, campaign_id: str) -> dict[str, Any]:
    issued, redeemed, discount = store.query(
        "SELECT count(*), count(*) FILTER (redemption_id IS NOT NULL AND voided_at IS NULL), "
        "coalesce(sum(discount_yen) FILTER (redemption_id IS NOT NULL AND voided_at IS NULL), 0) "
        "FROM coupons WHERE campaign_id = ?",
        [campaign_id],
    )[0]
    by_store = store.query(
        "SELECT store_id, count(*), sum(discount_yen), sum(amount_yen) FROM coupons "
        "WHERE campaign_id = ? AND redemption_id IS NOT NULL AND voided_at IS NULL "
        "GROUP BY store_id ORDER BY count(*) DESC, store_id",
        [campaign_id],
    )
    return {
        "issued": int(issued),
        "redeemed": int(redeemed),
        "discount_yen": int(discount),
        "by_store": [
            {
                "store_id": s,
                "redemptions": int(n),
                "discount_yen": int(d or 0),
                "amount_yen": int(a or 0),
            }
            for s, n, d, a in by_store
        ],
    }


def _days(seconds: int) -> str:
    return f"{seconds // 86400}d" if seconds % 86400 == 0 else f"{seconds}s"
