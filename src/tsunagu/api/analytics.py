"""Analytics over every channel: the routes translate HTTP to the analytics runners."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Query

from tsunagu.analytics.channels import ChannelsQuery, ChannelsResult, run_channels
from tsunagu.analytics.facts import fresh_engine
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, FunnelResult, run_funnel
from tsunagu.analytics.kpis import KpiQuery, KpiResult, run_kpis
from tsunagu.analytics.paths import PathsQuery, PathsResult, run_paths
from tsunagu.analytics.retention import RetentionQuery, RetentionResult, run_retention
from tsunagu.api.deps import ReadKey, SettingsDep, StoreDep

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.post(
    "/funnel",
    summary="Customers from step to step across channels, with conversion and time to convert",
    response_model=FunnelResult,
)
def funnel(query: FunnelQuery, store: StoreDep, settings: SettingsDep, _: ReadKey) -> FunnelResult:
    engine = fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)
    return run_funnel(engine=engine, query=query, timezone=settings.timezone)


@router.post(
    "/retention",
    summary="Cohorts by first start event, and how many return per day, week or month",
    response_model=RetentionResult,
)
def retention(
    query: RetentionQuery, store: StoreDep, settings: SettingsDep, _: ReadKey
) -> RetentionResult:
    engine = fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)
    return run_retention(engine=engine, query=query)


@router.post(
    "/paths",
    summary="The most frequent next (or previous) steps around an event, as Sankey nodes and links",
    response_model=PathsResult,
)
def paths(query: PathsQuery, store: StoreDep, settings: SettingsDep, _: ReadKey) -> PathsResult:
    engine = fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)
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
    engine = fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)
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
    engine = fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)
    return run_kpis(engine=engine, query=query)
