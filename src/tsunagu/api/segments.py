"""Segments over HTTP: /v1/segments (POST, GET), /v1/segments/{id}, /v1/segments/{id}/members,
POST /v1/segments/preview and /v1/segments/{id}/refresh."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.activation import membership
from tsunagu.activation.segments import Preview, Rule, SegmentDefinition, preview
from tsunagu.api.deps import ReadKey, SettingsDep, StoreDep, WriteKey, analytics_engine
from tsunagu.identity.rules import load_rules

router = APIRouter(prefix="/v1/segments", tags=["segments"])


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: Rule
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    as_of: datetime | None = Field(default=None, description="the moment windows count back from")
    sample: int = Field(default=10, ge=0, le=100)


@router.post("/preview", summary="How many customers a rule holds, and a few of them")
def segments_preview(
    body: PreviewRequest, store: StoreDep, settings: SettingsDep, _: ReadKey
) -> Preview:
    analytics_engine(store, settings)
    return preview(store=store, rule=body.rule, as_of=body.as_of, sample=body.sample)


@router.post("", status_code=201, summary="Keep a segment and fill it")
def segments_create(
    definition: SegmentDefinition, store: StoreDep, settings: SettingsDep, _: WriteKey
) -> dict[str, Any]:
    analytics_engine(store, settings)
    rules = load_rules(settings.data_dir)
    segment, refreshed = membership.create_segment(store=store, definition=definition, rules=rules)
    return {**dataclasses.asdict(segment), "refresh": dataclasses.asdict(refreshed)}


@router.get("", summary="The segments, with their member counts")
def segments_list(store: StoreDep, _: ReadKey) -> list[dict[str, Any]]:
    return [dataclasses.asdict(s) for s in membership.list_segments(store=store)]


@router.get("/{segment_id}", summary="A segment (by id or name)")
def segments_get(segment_id: str, store: StoreDep, _: ReadKey) -> dict[str, Any]:
    return dataclasses.asdict(membership.get_segment(store=store, segment_id=segment_id))


@router.post("/{segment_id}/refresh", summary="Members as the rule says now")
def segments_refresh(
    segment_id: str, store: StoreDep, settings: SettingsDep, _: WriteKey
) -> dict[str, Any]:
    analytics_engine(store, settings)
    rules = load_rules(settings.data_dir)
    done = membership.refresh_segment(store=store, segment_id=segment_id, rules=rules)
    return dataclasses.asdict(done)


@router.get("/{segment_id}/members", summary="The members (JSON, or CSV with format=csv)")
def segments_members(
    segment_id: str,
    store: StoreDep,
    _: ReadKey,
    format: Literal["json", "csv"] = "json",
    limit: Annotated[int | None, Query(ge=1, le=10_000_000)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    rows = membership.segment_members(
        store=store, segment_id=segment_id, limit=limit, offset=offset
    )
    if format != "csv":
        return rows
    return Response(membership.members_csv(rows), media_type="text/csv; charset=utf-8")
