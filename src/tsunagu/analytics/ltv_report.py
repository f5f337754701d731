"""How the last LTV fit spreads over customers: customers and predicted value per band of
predicted value (in yen), with the mean, median, 90th percentile and the top tenth's share."""

from __future__ import annotations

import itertools
import time
from datetime import date

from pydantic import BaseModel

from tsunagu.analytics.engine import Engine

BANDS = (0, 1_000, 3_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000)
"""The lower bounds of the bands, yen; the last band is open."""


class LtvBand(BaseModel):
    low: int
    high: int | None
    """Exclusive; None for the open band."""
    customers: int
    value: int
    """The band's predicted value, yen."""


class LtvDistribution(BaseModel):
    as_of: date | None
    """The fit's observation end; None before any fit (`tsunagu ltv fit`)."""
    horizon_days: int | None
    customers: int
    value: int
    mean: float | None
    median: float | None
    p90: float | None
    top_decile_share: float | None
    """The share of all predicted value held by the tenth of customers predicted highest."""
    expected_purchases: float | None
    """Mean predicted purchases per customer over the horizon."""
    bands: list[LtvBand]
    seconds: float


def ltv_distribution(*, engine: Engine) -> LtvDistribution:
    started = time.perf_counter()
    band = " ".join(f"WHEN v < {high} THEN {low}" for low, high in itertools.pairwise(BANDS))
    rows = engine.rows(
        f"SELECT CASE {band} ELSE {BANDS[-1]} END AS low, count(*), sum(v) FROM "
        "(SELECT greatest(expected_value, 0) AS v FROM ltv_predictions "
        " WHERE expected_value IS NOT NULL) GROUP BY low"
    )
    ((as_of, horizon, customers, total, mean, median, p90, top, purchases),) = engine.rows(
        "WITH p AS (SELECT greatest(expected_value, 0) AS v, expected_purchases, as_of, "
        "  horizon_days, ntile(10) OVER (ORDER BY expected_value DESC) AS tenth "
        "  FROM ltv_predictions WHERE expected_value IS NOT NULL) "
        "SELECT max(as_of), max(horizon_days), count(*), sum(v), avg(v), "
        " quantile_cont(v, 0.5), quantile_cont(v, 0.9), sum(v) FILTER (WHERE tenth = 1), "
        " avg(expected_purchases) FROM p"
    )
    found = {int(low): (int(n), round(value or 0)) for low, n, value in rows}
    highs: list[int | None] = [*BANDS[1:], None]
    return LtvDistribution(
        as_of=as_of,
        horizon_days=horizon,
        customers=int(customers),
        value=round(total or 0),
        mean=mean,
        median=median,
        p90=p90,
        top_decile_share=(top or 0) / total if total else None,
        expected_purchases=purchases,
        bands=[
            LtvBand(
                low=low,
                high=high,
                customers=found.get(low, (0, 0))[0],
                value=found.get(low, (0, 0))[1],
            )
            for low, high in zip(BANDS, highs, strict=True)
        ],  # fmt: skip
        seconds=round(time.perf_counter() - started, 4),
    )
