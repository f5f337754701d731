"""Dependencies routes share, as `Annotated` aliases."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.facts import fresh_engine
from tsunagu.config import Settings
from tsunagu.events.collector import Collector
from tsunagu.events.sources import SourceKeys
from tsunagu.keys import ApiKey, KeyRing, Scope
from tsunagu.store import Store

_bearer = HTTPBearer(auto_error=False, description="An API key from `tsunagu keys create`.")


# The dependencies are coroutines: a sync one would cost each request a trip to the thread
# pool and back for what takes microseconds.


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_collector(request: Request) -> Collector:
    return request.app.state.collector


async def get_source_keys(request: Request) -> SourceKeys:
    return request.app.state.source_keys


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
CollectorDep = Annotated[Collector, Depends(get_collector)]
SourceKeysDep = Annotated[SourceKeys, Depends(get_source_keys)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _key_ring(request: Request) -> KeyRing:
    return request.app.state.key_ring


async def _authenticated(
    request: Request, credentials: HTTPAuthorizationCredentials | None, needs: Scope
) -> ApiKey:
    ring, secret = _key_ring(request), credentials.credentials if credentials else None
    if ring.knows(secret):
        return ring.authenticate(secret, needs=needs)
    return await run_in_threadpool(ring.authenticate, secret, needs=needs)  # reads the store


async def require_read(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    return await _authenticated(request, credentials, "read")


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    return await _authenticated(request, credentials, "admin")


async def require_pos(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    return await _authenticated(request, credentials, "pos")


ReadKey = Annotated[ApiKey, Depends(require_read)]
PosKey = Annotated[ApiKey, Depends(require_pos)]
AdminKey = Annotated[ApiKey, Depends(require_admin)]


def analytics_engine(store: Store, settings: Settings) -> Engine:
    """An engine over the analytics table brought up to date. Routes call it after their input
    is validated (a dependency would run first, and bad input could cost a rebuild)."""
    return fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)


def scratch_dir(settings: Settings) -> Path:
    """Where uploads wait while they are imported (the data dir's tmp/)."""
    path = settings.data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def uploaded_answer(result: Any, file: str | None) -> dict[str, Any]:
    """An import's result for the client that uploaded the file: the rejects file's rows in
    `rejects` (the file itself stays on the server only until the upload is cleaned up)."""
    answer = dataclasses.asdict(result)
    answer["file"] = file
    if result.rejects_file:
        answer["rejects"] = Path(result.rejects_file).read_text(encoding="utf-8")
        answer["rejects_file"] = None
    return answer
