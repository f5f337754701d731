"""Analytics over every channel: the routes translate HTTP to the analytics runners."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Query

from tsunagu.analytics.assortment import AssortmentQuery, AssortmentReport, assortment_report
from tsunagu.analytics.channels import ChannelsQuery, ChannelsResult, run_channels
from tsunagu.analytics.fans import (
    FanComputation,
    FanReport,
    compute_fan_levels,
    fan_report,
    load_fan_rules,
)
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, FunnelResult, run_funnel
from tsunagu.analytics.kpis import KpiQuery, KpiResult, run_kpis
from tsunagu.analytics.ltv import (
    LtvEvaluation,
    LtvEvaluationQuery,
    LtvFit,
    LtvFitQuery,
    evaluate_ltv,
    fit_ltv,
)
from tsunagu.analytics.paths import PathsQuery, PathsResult, run_paths
from tsunagu.analytics.retention import RetentionQuery, RetentionResult, run_retention
from tsunagu.api.deps import ReadKey, SettingsDep, StoreDep, WriteKey, analytics_engine

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.post(
    "/funnel",
    summary="Customers from step to step across channels, with conversion and time to convert",
    response_model=FunnelResult,
)
def funnel(query: FunnelQuery, store: StoreDep, settings: SettingsDep, _: ReadKey) -> FunnelResult:
    engine = analytics_engine(store, settings)
    return run_funnel(engine=engine, query=query, timezone=settings.timezone)


@router.post(
    "/retention",
    summary="Cohorts by first start event, and how many return per day, week or month",
    response_model=RetentionResult,
)
def retention(
    query: RetentionQuery, store: StoreDep, settings: SettingsDep, _: ReadKey
) -> RetentionResult:
    engine = analytics_engine(store, settings)
    return run_retention(engine=engine, query=query)


@router.post(
    "/paths",
    summary="The most frequent next (or previous) steps around an event, as Sankey nodes and links",
    response_model=PathsResult,
)
def paths(query: PathsQuery, store: StoreDep, settings: SettingsDep, _: ReadKey) -> PathsResult:
    engine = analytics_engine(store, settings)
    return run_paths(engine=engine, query=query, timezone=settings.timezone)


@router.get(
    "/channels",
    summary="Online-only, store-only and omnichannel buyers, ROPO, showrooming, O2O lift",
    response_model=ChannelsResult,
)
def channels(
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    start: date | None = Query(default=None, alias="from", description="first day (local)"),
    to: date | None = Query(default=None, description="last day (local)"),
    ropo_days: int = Query(default=7, ge=1, le=365),
    showrooming_days: int = Query(default=7, ge=1, le=365),
) -> ChannelsResult:
    query = parse(
        ChannelsQuery,
        {"from": start, "to": to, "ropo_days": ropo_days, "showrooming_days": showrooming_days},
    )
    engine = analytics_engine(store, settings)
    return run_channels(engine=engine, query=query, timezone=settings.timezone)


@router.get(
    "/kpis",
    summary="Active customers per channel, orders, revenue, AOV, frequency, repeat, new vs "
    "returning, coupon redemption: per day, week or month, per store",
    response_model=KpiResult,
)
def kpis(
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    start: date | None = Query(default=None, alias="from", description="first day (local)"),
    to: date | None = Query(default=None, description="last day (local)"),
    grain: Literal["day", "week", "month"] = "day",
    store_id: str | None = Query(default=None, max_length=200),
    by_store: bool = False,
) -> KpiResult:
    query = parse(
        KpiQuery,
        {"from": start, "to": to, "grain": grain, "store_id": store_id, "by_store": by_store},
    )
    engine = analytics_engine(store, settings)
    return run_kpis(engine=engine, query=query)


@router.post(
    "/ltv",
    summary="Fit BG/NBD and Gamma-Gamma on every purchase; store each customer's expected "
    "purchases and value",
    response_model=LtvFit,
)
def ltv_fit(query: LtvFitQuery, store: StoreDep, settings: SettingsDep, _: WriteKey) -> LtvFit:
    engine = analytics_engine(store, settings)
    return fit_ltv(engine=engine, store=store, **dict(query))


@router.post(
    "/ltv/evaluate",
    summary="Fit up to a calibration end and compare predicted with actual repeat purchases",
    response_model=LtvEvaluation,
)
def ltv_evaluate(
    query: LtvEvaluationQuery, store: StoreDep, settings: SettingsDep, _: ReadKey
) -> LtvEvaluation:
    engine = analytics_engine(store, settings)
    return evaluate_ltv(engine=engine, **dict(query))


@router.get(
    "/fans",
    summary="Fan levels: the distribution as of a day and the movement since another",
    response_model=FanReport,
)
def fans(
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    as_of: date | None = Query(default=None, description="day (local); default the last with data"),
    compare_to: date | None = Query(default=None, description="earlier day to compare with"),
) -> FanReport:
    engine = analytics_engine(store, settings)
    rules = load_fan_rules(settings.data_dir)
    return fan_report(engine=engine, rules=rules, as_of=as_of, compare_to=compare_to)


@router.post(
    "/fans/compute",
    summary="Recompute and store every profile's fan level",
    response_model=FanComputation,
)
def fans_compute(
    store: StoreDep,
    settings: SettingsDep,
    _: WriteKey,
    as_of: date | None = Query(default=None, description="day (local); default the last with data"),
) -> FanComputation:
    analytics_engine(store, settings)
    rules = load_fan_rules(settings.data_dir)
    return compute_fan_levels(store=store, rules=rules, as_of=as_of)


@router.get(
    "/assortment",
    summary="A store's catchment demand (online and in store) against what it stocks and sells",
    response_model=AssortmentReport,
)
def assortment(
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    store_id: str = Query(min_length=1, max_length=200),
    radius_km: float = Query(default=10.0, gt=0, le=500),
    days: int = Query(default=90, ge=1, le=3650),
    low_demand: int = Query(default=2, ge=1),
    top: int = Query(default=50, ge=1, le=1000),
) -> AssortmentReport:
    analytics_engine(store, settings)
    query = AssortmentQuery(
        store_id=store_id, radius_km=radius_km, days=days, low_demand=low_demand, top=top
    )
    return assortment_report(store=store, query=query)
