"""Profiles: personal data, so every route needs an API key."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tsunagu.analytics.fans import level_of
from tsunagu.analytics.ltv import prediction_of
from tsunagu.api.deps import AdminKey, ReadKey, SettingsDep, StoreDep
from tsunagu.events.model import Channel
from tsunagu.exceptions import InvalidInput
from tsunagu.identity.erasure import erase_profile
from tsunagu.identity.graph import split_identifier
from tsunagu.identity.profiles import Profile, get_profile, lookup, timeline
from tsunagu.identity.rules import load_rules
from tsunagu.store import Store

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])


@router.get(
    "/lookup", summary="The profile holding an identifier (what a POS or staff screen calls)"
)
def lookup_profile(
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    value: str = Query(min_length=1, max_length=1024),
    type: str | None = Query(default=None, description="identifier type; every type when omitted"),
) -> dict[str, Any]:
    rules = load_rules(settings.data_dir)
    profile_id = lookup(store=store, rules=rules, kind=type, value=value)
    return _with_figures(store, get_profile(store=store, profile_id=profile_id, rules=rules))


@router.get("/{profile_id}/timeline", summary="The profile's events across channels, newest first")
def read_timeline(
    profile_id: str,
    store: StoreDep,
    _: ReadKey,
    limit: int = Query(default=50, ge=1, le=500),
    before: str | None = Query(default=None, description="next_before of the previous page"),
    channel: Channel | None = None,
) -> dict[str, Any]:
    page = timeline(
        store=store,
        profile_id=profile_id,
        limit=limit,
        before=before,
        channel=channel.value if channel else None,
    )
    return dataclasses.asdict(page)


class SplitRequest(BaseModel):
    type: str = Field(description="identifier type, e.g. device_id")
    value: str = Field(min_length=1, max_length=1024)
    reason: str = Field(min_length=1, max_length=500, description="kept in the audit")


@router.post("/{profile_id}/split", summary="Detach an identifier (a shared tablet) from a profile")
def split(
    profile_id: str, body: SplitRequest, store: StoreDep, settings: SettingsDep, _: AdminKey
) -> dict[str, Any]:
    rules = load_rules(settings.data_dir)
    if lookup(store=store, rules=rules, kind=body.type, value=body.value) != profile_id:
        raise InvalidInput(
            f"value: {body.value!r} is not an identifier of {profile_id}", field="value"
        )
    report = split_identifier(
        store=store, rules=rules, kind=body.type, value=body.value, reason=body.reason
    )
    return dataclasses.asdict(report)


@router.delete(
    "/{profile_id}", summary="Erase the person: every row, everywhere; suppress re-imports"
)
def erase(profile_id: str, store: StoreDep, settings: SettingsDep, _: AdminKey) -> dict[str, Any]:
    report = erase_profile(store=store, rules=load_rules(settings.data_dir), profile_id=profile_id)
    return dataclasses.asdict(report)


@router.get("/{profile_id}", summary="Identifiers, traits and computed traits of a profile")
def read_profile(
    profile_id: str, store: StoreDep, settings: SettingsDep, _: ReadKey
) -> dict[str, Any]:
    rules = load_rules(settings.data_dir)
    return _with_figures(store, get_profile(store=store, profile_id=profile_id, rules=rules))


def _with_figures(store: Store, profile: Profile) -> dict[str, Any]:
    """The profile, with what analytics computed for it: its fan level and lifetime value
    (null until `tsunagu fans compute` / `tsunagu ltv fit` have run)."""
    out = dataclasses.asdict(profile)
    out["fan_level"] = level_of(store, profile.profile_id)
    out["ltv"] = prediction_of(store, profile.profile_id)
    return out
