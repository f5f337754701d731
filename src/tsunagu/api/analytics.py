"""Analytics over every channel: the routes translate HTTP to the analytics runners."""

from __future__ import annotations

from fastapi import APIRouter

from tsunagu.analytics.facts import fresh_engine
from tsunagu.analytics.funnels import FunnelQuery, FunnelResult, run_funnel
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
