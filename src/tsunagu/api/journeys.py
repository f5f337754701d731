"""Journeys over HTTP: /v1/journeys (POST, GET), /v1/journeys/templates, /v1/journeys/{id},
POST /v1/journeys/{id}/pause and /resume."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from tsunagu.activation import journeys, templates
from tsunagu.api.deps import ReadKey, SettingsDep, StoreDep, WriteKey

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])


@router.post("", status_code=201, summary="Create a journey (from a template, maybe)")
def journeys_create(
    body: journeys.JourneyCreate, store: StoreDep, settings: SettingsDep, _: WriteKey
) -> dict[str, Any]:
    made = journeys.create_journey(store=store, body=body, timezone=settings.timezone)
    return dataclasses.asdict(made)


@router.get("", summary="The journeys, with their customers by status")
def journeys_list(store: StoreDep, _: ReadKey) -> list[dict[str, Any]]:
    return [dataclasses.asdict(j) for j in journeys.list_journeys(store=store)]


@router.get("/templates", summary="The built-in journeys")
def journeys_templates(_: ReadKey) -> list[dict[str, str]]:
    return templates.describe()


@router.get("/{journey_id}", summary="A journey (by id or name)")
def journeys_get(journey_id: str, store: StoreDep, _: ReadKey) -> dict[str, Any]:
    return dataclasses.asdict(journeys.get_journey(store=store, journey_id=journey_id))


@router.post("/{journey_id}/pause", summary="Pause: no one enters, no step runs")
def journeys_pause(journey_id: str, store: StoreDep, _: WriteKey) -> dict[str, Any]:
    done = journeys.set_status(store=store, journey_id=journey_id, status="paused")
    return dataclasses.asdict(done)


@router.post("/{journey_id}/resume", summary="Resume: triggers count from now")
def journeys_resume(journey_id: str, store: StoreDep, _: WriteKey) -> dict[str, Any]:
    done = journeys.set_status(store=store, journey_id=journey_id, status="active")
    return dataclasses.asdict(done)
