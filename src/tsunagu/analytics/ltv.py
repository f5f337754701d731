"""Customer lifetime value: BG/NBD for how often a customer will buy, Gamma-Gamma for how much.

The models are pymc-marketing's (`BetaGeoModel`, `GammaGammaModel`); nothing here is
hand-written maths. They are fitted by maximum likelihood: flat priors (`HalfFlat`) and the
MAP estimate, so that the estimate is the MLE (pymc-marketing's default priors pull the
parameters away from it). On the CDNOW sample of the BG/NBD paper this gives the published
r = 0.243, alpha = 4.414, a = 0.793, b = 2.426 (log-likelihood -9582.4) and the Gamma-Gamma
note's p = 6.25, q = 3.74, v = 15.44.

The customer-by-customer summary follows the papers:

- purchases are "Order Completed" events of every channel, by customer (resolved profile),
  less those of buyers known only by a receipt (a till sale without a member card: one-off
  and anonymous, they would read as customers who never came back);
  purchases on the same local day count once, with their values added up;
- frequency is the number of purchase days after the first, recency the time from the first
  purchase day to the last, T the time from the first purchase day to the end of the
  observation, in fractional periods of `unit_days` (7: weeks) computed from the dates;
- the monetary value is the mean value of the repeat purchase days (the first is left out);
  the Gamma-Gamma model is fitted on the customers whose mean is above zero.

`evaluate` fits on purchases up to a calibration end and compares the expected number of
repeat purchase days in the rest of the data with what happened, in total and per
calibration frequency, as in the paper's holdout test.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.analytics.engine import Engine
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store, utcnow

MIN_CUSTOMERS = 10
FREQUENCY_GROUPS = 7
"""Holdout figures per calibration frequency 0 .. 6, then 7 and more together."""


class BgNbd(BaseModel):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


class GammaGamma(BaseModel):
    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int
    """Customers with repeat purchases, on whom it is fitted."""


class LtvFit(BaseModel):
    observation_end: date
    unit_days: int
    customers: int
    repeat_customers: int
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    p: float | None
    q: float | None
    v: float | None
    gamma_gamma_log_likelihood: float | None
    horizon_days: int
    expected_purchases: float
    """Over the next `horizon_days`, all customers."""
    expected_value: float | None
    seconds: float


class FrequencyGroup(BaseModel):
    frequency: int
    label: str
    customers: int
    predicted: float
    actual: int


class LtvEvaluationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calibration_end: date = Field(description="last day (local) of the fitting period")
    unit_days: int = Field(default=7, ge=1, le=366, description="days in a period (7: weeks)")


class LtvFitQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizon_days: int = Field(default=365, ge=1, le=3650, description="days ahead to predict")
    unit_days: int = Field(default=7, ge=1, le=366, description="days in a period (7: weeks)")


class LtvEvaluation(BaseModel):
    calibration_end: date
    holdout_end: date
    holdout_days: int
    unit_days: int
    customers: int
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    predicted: float
    actual: int
    by_frequency: list[FrequencyGroup]
    seconds: float


def summary_sql(end: date, unit_days: int) -> str:
    """(pid, frequency, recency, T, monetary, first_day) of customers who bought by `end`."""
    return (
        "WITH days AS (SELECT pid, day, coalesce(sum(revenue), 0) AS value FROM analytics_events "
        f"WHERE event = 'Order Completed' AND day <= DATE '{end.isoformat()}' "
        "AND pid IN (SELECT pid FROM analytics_profiles WHERE identified) GROUP BY pid, day) "
        "SELECT pid, count(*) - 1 AS frequency, "
        f"date_diff('day', min(day), max(day)) / {float(unit_days)} AS recency, "
        f"date_diff('day', min(day), DATE '{end.isoformat()}') / {float(unit_days)} AS t, "
        "CASE WHEN count(*) > 1 THEN (sum(value) - arg_min(value, day)) / (count(*) - 1) END "
        "AS monetary, min(day) AS first_day FROM days GROUP BY pid ORDER BY pid"
    )


def _summary(engine: Engine, end: date, unit_days: int) -> dict[str, np.ndarray]:
    table = engine.table(summary_sql(end, unit_days))
    columns = {
        name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names
    }
    if len(columns["pid"]) < MIN_CUSTOMERS:
        raise InvalidInput(
            f"calibration_end: {len(columns['pid'])} customers bought by {end}; the models need "
            f"at least {MIN_CUSTOMERS}",
            field="calibration_end",
        )
    return columns


@contextmanager
def _quiet() -> Iterator[None]:
    """pymc and arviz speak through warnings and progress bars; a command prints figures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _finite(expected: np.ndarray, bg: BgNbd, *, field: str, fitted: str) -> np.ndarray:
    """`expected`, unless a degenerate estimate made it infinite or NaN."""
    if not np.all(np.isfinite(expected)):
        raise InvalidInput(
            f"{field}: the BG/NBD estimate {fitted} is degenerate (r={bg.r:.4g}, "
            f"alpha={bg.alpha:.4g}, a={bg.a:.4g}, b={bg.b:.4g}) and its predictions are not "
            "finite: the purchases show too little spread in purchase rates or drop-out",
            field=field,
        )
    return expected


def fit_bg_nbd(frequency: np.ndarray, recency: np.ndarray, t: np.ndarray) -> tuple[BgNbd, Any]:
    """The MLE of the BG/NBD model; returns the parameters and the fitted model."""
    import pandas as pd
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel

    data = pd.DataFrame(
        {
            "customer_id": np.arange(len(frequency)),
            "frequency": frequency,
            "recency": recency,
            "T": t,
        }
    )
    model = BetaGeoModel(
        data=data, model_config={k: Prior("HalfFlat") for k in ("r", "alpha", "a", "b")}
    )
    model.fit(method="map", progressbar=False)
    values = _estimate(model, ("r", "alpha", "a", "b"))
    return BgNbd(**values, log_likelihood=_log_likelihood(model, values)), model


def fit_gamma_gamma(frequency: np.ndarray, monetary: np.ndarray) -> tuple[GammaGamma, Any]:
    import pandas as pd
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import GammaGammaModel

    data = pd.DataFrame(
        {
            "customer_id": np.arange(len(frequency)),
            "frequency": frequency,
            "monetary_value": monetary,
        }
    )
    model = GammaGammaModel(data=data, model_config={k: Prior("HalfFlat") for k in ("p", "q", "v")})
    model.fit(method="map", progressbar=False)
    values = _estimate(model, ("p", "q", "v"))
    return (
        GammaGamma(
            **values, log_likelihood=_log_likelihood(model, values), customers=len(frequency)
        ),
        model,
    )


def _estimate(model: Any, names: tuple[str, ...]) -> dict[str, float]:
    """The MAP point (one draw of one chain in the fitted model's posterior)."""
    posterior = model.idata.posterior
    return {k: float(posterior[k].values.ravel()[0]) for k in names}


def _log_likelihood(model: Any, values: dict[str, float]) -> float:
    """The log-likelihood at the estimate: the model's log density without the Jacobian of
    the log transform (flat priors add nothing)."""
    point = {f"{k}_log__": np.log(v) for k, v in values.items()}
    return float(model.model.compile_logp(jacobian=False)(point))


def fit_ltv(
    *, engine: Engine, store: Store | None = None, unit_days: int = 7, horizon_days: int = 365
) -> LtvFit:
    """Fit both models on every purchase; with `store`, keep each customer's expected purchases
    and value over the next `horizon_days` in `ltv_predictions`."""
    started = time.perf_counter()
    end = engine.rows("SELECT max(day) FROM analytics_events WHERE event = 'Order Completed'")[0][0]
    if end is None:
        raise InvalidInput("no purchases (Order Completed) to fit on", field="events")
    with _quiet():
        s = _summary(engine, end, unit_days)
        bg, bg_model = fit_bg_nbd(s["frequency"], s["recency"], s["t"])
        repeat = s["frequency"] > 0
        # The Gamma-Gamma model needs spend above zero: free orders (a full discount) and
        # refunds netted in an order leave some customers' means at zero or below.
        spending = repeat & (np.nan_to_num(s["monetary"].astype(float)) > 0)
        gg: GammaGamma | None = None
        expected = _finite(
            _expected(bg_model, horizon_days / unit_days), bg, field="events", fitted="on them"
        )
        value = None
        if spending.sum() >= MIN_CUSTOMERS:
            gg, gg_model = fit_gamma_gamma(
                s["frequency"][spending], s["monetary"][spending].astype(float)
            )
            value = expected * _expected_spend(gg_model, s["frequency"], s["monetary"])
        if store is not None:
            _save(store, s, expected, value, horizon_days, end)
    return LtvFit(
        observation_end=end,
        unit_days=unit_days,
        customers=len(s["pid"]),
        repeat_customers=int(repeat.sum()),
        **bg.model_dump(),
        p=gg.p if gg else None,
        q=gg.q if gg else None,
        v=gg.v if gg else None,
        gamma_gamma_log_likelihood=gg.log_likelihood if gg else None,
        horizon_days=horizon_days,
        expected_purchases=round(float(expected.sum()), 3),
        expected_value=round(float(value.sum()), 2) if value is not None else None,
        seconds=round(time.perf_counter() - started, 3),
    )


def _expected(model: Any, periods: float) -> np.ndarray:
    """Each customer's expected purchases (days) in the next `periods`."""
    return np.asarray(model.expected_purchases(future_t=periods).values).reshape(-1)


def _expected_spend(model: Any, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """E[value of a purchase | the customer's history] under the fitted Gamma-Gamma (the
    population mean for customers without repeat purchases)."""
    import pandas as pd

    data = pd.DataFrame(
        {
            "customer_id": np.arange(len(frequency)),
            "frequency": frequency,
            "monetary_value": np.clip(np.nan_to_num(monetary.astype(float)), 0.0, None),
        }
    )
    return np.asarray(model.expected_customer_spend(data=data).values).reshape(-1)


def _save(
    store: Store,
    s: dict[str, np.ndarray],
    expected: np.ndarray,
    value: np.ndarray | None,
    horizon_days: int,
    end: date,
) -> None:
    import pyarrow as pa

    table = pa.table(
        {
            "pid": s["pid"].astype(np.int64),
            "frequency": s["frequency"].astype(np.int64),
            "recency": s["recency"].astype(float),
            "t": s["t"].astype(float),
            "expected_purchases": expected,
            "expected_value": value if value is not None else np.full(len(expected), np.nan),
        }
    )
    with store.transaction() as cur:
        cur.register("_ltv", table)
        cur.execute("DELETE FROM ltv_predictions")
        cur.execute(
            "INSERT INTO ltv_predictions SELECT ap.profile_id, l.frequency, l.recency, l.t, "
            "l.expected_purchases, nullif(l.expected_value, 'NaN'::DOUBLE), ?, ?::DATE, "
            "?::TIMESTAMP FROM _ltv l JOIN analytics_profiles ap USING (pid) ORDER BY 1",
            [horizon_days, end, utcnow()],
        )
        cur.unregister("_ltv")


def evaluate_ltv(*, engine: Engine, calibration_end: date, unit_days: int = 7) -> LtvEvaluation:
    """Fit on purchases up to `calibration_end`; compare the expected repeat purchase days
    after it, up to the last day with data, with the actual ones."""
    started = time.perf_counter()
    last = engine.rows("SELECT max(day) FROM analytics_events WHERE event = 'Order Completed'")[0][
        0
    ]
    if last is None or last <= calibration_end:
        raise InvalidInput(
            "calibration_end: must be before the last purchase day"
            + (f" ({last})" if last else " (there are no purchases)"),
            field="calibration_end",
        )
    with _quiet():
        s = _summary(engine, calibration_end, unit_days)
        bg, model = fit_bg_nbd(s["frequency"], s["recency"], s["t"])
        holdout_days = (last - calibration_end).days
        predicted = _finite(
            _expected(model, holdout_days / unit_days),
            bg,
            field="calibration_end",
            fitted=f"up to {calibration_end}",
        )
    actual_by_pid = dict(
        engine.rows(
            "SELECT pid, count(DISTINCT day) FROM analytics_events WHERE event = 'Order Completed' "
            f"AND day > DATE '{calibration_end.isoformat()}' AND day <= DATE '{last.isoformat()}' "
            "GROUP BY pid"
        )
    )
    actual = np.array([actual_by_pid.get(int(p), 0) for p in s["pid"]], dtype=np.int64)
    groups = np.minimum(s["frequency"].astype(np.int64), FREQUENCY_GROUPS)
    by_frequency = [
        FrequencyGroup(
            frequency=g,
            label=f"{g}+" if g == FREQUENCY_GROUPS else str(g),
            customers=int((groups == g).sum()),
            predicted=round(float(predicted[groups == g].sum()), 3),
            actual=int(actual[groups == g].sum()),
        )
        for g in range(FREQUENCY_GROUPS + 1)
        if (groups == g).any()
    ]
    return LtvEvaluation(
        calibration_end=calibration_end,
        holdout_end=last,
        holdout_days=holdout_days,
        unit_days=unit_days,
        customers=len(s["pid"]),
        **bg.model_dump(),
        predicted=round(float(predicted.sum()), 3),
        actual=int(actual.sum()),
        by_frequency=by_frequency,
        seconds=round(time.perf_counter() - started, 3),
    )


def prediction_of(store: Store, profile_id: str) -> dict[str, Any] | None:
    """A profile's figures from the last fit (for the profile API), or None."""
    rows = store.query(
        "SELECT frequency, recency, t, expected_purchases, expected_value, horizon_days, as_of "
        "FROM ltv_predictions WHERE profile_id = ?",
        [profile_id],
    )
    if not rows:
        return None
    names = ("frequency", "recency", "t", "expected_purchases", "expected_value", "horizon_days")
    figures: dict[str, Any] = dict(zip(names, rows[0][:6], strict=True))
    figures["as_of"] = str(rows[0][6])
    return figures
