"""Analytics over every channel: the routes translate HTTP to the analytics runners."""

from __future__ import annotations

from fastapi import APIRouter

from tsunagu.analytics.facts import fresh_engine
from tsunagu.analytics.funnels import FunnelQuery, FunnelResult, run_funnel
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
