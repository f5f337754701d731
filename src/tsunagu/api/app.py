"""The FastAPI application: one store, one collector, routers per domain."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from tsunagu import __version__
from tsunagu.activation.channels import configured as configured_channels
from tsunagu.activation.links import secret_of
from tsunagu.activation.refresher import SegmentRefresher
from tsunagu.activation.scheduler import Scheduler
from tsunagu.api import (
    admin,
    analytics,
    campaigns,
    catalog,
    collector,
    errors,
    health,
    journeys,
    messaging,
    profiles,
    segments,
    users,
)
from tsunagu.api import metrics as metrics_api
from tsunagu.api.collector_schema import WRITE_KEY_SCHEME
from tsunagu.api.limits import BodyLimit
from tsunagu.api.metrics import Metrics, Timing
from tsunagu.catalog.reservations import HoldSweeper
from tsunagu.config import Settings, get_settings
from tsunagu.events.collector import Collector
from tsunagu.events.sources import SourceKeys
from tsunagu.keys import KeyRing
from tsunagu.store import Store
from tsunagu.users import Sessions
from tsunagu.web import activation as activation_pages
from tsunagu.web import analysis, pages, reports, session, staff
from tsunagu.web import profiles as profile_pages
from tsunagu.web.pages import STATIC


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    local_admin_key: str | None = None,
    on_stop: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the app. With `store`, the caller owns it; otherwise the app opens and closes it.

    `local_admin_key` is an admin key valid for this process only, which `tsunagu serve` hands
    to the CLI on the same machine through the server file. `on_stop` runs at shutdown, after
    the last events are committed (uvicorn may end the process right after).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = store or Store.open(settings)
        app.state.settings = settings
        app.state.source_keys = SourceKeys(app.state.store)
        app.state.refused_origins = Counter()
        app.state.key_ring = KeyRing(app.state.store, local_admin_key=local_admin_key)
        app.state.sessions = Sessions(app.state.store)
        app.state.channels = configured_channels(settings)
        app.state.link_secret = secret_of(settings.data_dir)
        app.state.scheduler = Scheduler(app.state.store, settings, app.state.channels)
        app.state.collector = Collector(
            app.state.store,
            interval_ms=settings.commit_interval_ms,
            max_events=settings.max_commit_events,
            on_commit=app.state.scheduler.nudge,  # journeys answer events as they arrive
            on_timed=metrics.commit,
        )
        app.state.collector.start()
        sweeper = app.state.hold_sweeper = HoldSweeper(
            app.state.store, interval=settings.hold_sweep_seconds
        )
        sweeper.start()
        app.state.segment_refresher = SegmentRefresher(
            app.state.store,
            data_dir=settings.data_dir,
            timezone=settings.timezone,
            interval=settings.segment_refresh_seconds,
            every=settings.segment_schedule_seconds,
        )
        app.state.segment_refresher.start()
        app.state.scheduler.start()
        try:
            yield
        finally:
            app.state.scheduler.stop()
            app.state.segment_refresher.stop()
            sweeper.stop()
            app.state.collector.stop()
            if on_stop is not None:
                on_stop()
            if owned:
                app.state.store.close()

    # The API's page (/docs) from Swagger UI's files installed with fastapi-offline, not a
    # CDN. No /redoc: ReDoc's bundle fetches its logo from the internet.
    app = FastAPIOffline(
        redoc_url=None,
        title="tsunagu",
        version=__version__,
        summary="Open OMO customer platform: one customer across online and offline channels",
        lifespan=lifespan,
        responses=errors.ERROR_RESPONSES,
    )
    metrics = app.state.metrics = Metrics()
    metrics.watch(app.state)
    errors.install(app)
    app.add_middleware(
        BodyLimit, max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes
    )
    app.add_middleware(collector.Cors)
    app.add_middleware(Timing, metrics=metrics)
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.include_router(collector.router)
    app.include_router(admin.router)
    app.include_router(profiles.router)
    app.include_router(analytics.router)
    app.include_router(catalog.router)
    app.include_router(segments.router)
    app.include_router(campaigns.router)
    app.include_router(messaging.router)
    app.include_router(journeys.router)
    app.include_router(users.router)
    app.include_router(pages.router)
    app.include_router(staff.router)
    app.include_router(analysis.router)
    app.include_router(reports.router)
    app.include_router(profile_pages.router)
    app.include_router(activation_pages.router)
    app.mount("/static/app", StaticFiles(directory=STATIC), name="static")
    session.install(app)
    _document_write_keys(app)
    return app


def _document_write_keys(app: FastAPI) -> None:
    """The collector's security scheme (its routes read the key themselves) in the schema."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # plain() builds it once and keeps it there
            schemes = plain().setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["WriteKey"] = WRITE_KEY_SCHEME
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
