"""Dependencies routes share, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tsunagu.config import Settings
from tsunagu.events.collector import Collector
from tsunagu.events.sources import SourceKeys
from tsunagu.store import Store


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_collector(request: Request) -> Collector:
    return request.app.state.collector


def get_source_keys(request: Request) -> SourceKeys:
    return request.app.state.source_keys


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
CollectorDep = Annotated[Collector, Depends(get_collector)]
SourceKeysDep = Annotated[SourceKeys, Depends(get_source_keys)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
