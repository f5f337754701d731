"""Campaigns: what is sent, to whom, with which control share, and the coupon it may carry;
each customer's variant from a hash of campaign and customer. (Storing assignments and the
measured report follow, issue 13.)"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tsunagu.analytics.filters import window_seconds
from tsunagu.events.model import CHANNELS
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.store import Store, utcnow


class CouponTerms(BaseModel):
    """A coupon's terms: yen or percent off, the minimum purchase, when and where it is good,
    and how many a customer and the campaign may redeem."""

    model_config = ConfigDict(extra="forbid")

    value_yen: int | None = Field(default=None, ge=1, le=10_000_000)
    percent_off: int | None = Field(default=None, ge=1, le=100)
    min_purchase_yen: int = Field(default=0, ge=0, le=100_000_000)
    valid_from: date | datetime
    valid_to: date | datetime
    stores: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    per_customer_limit: int = Field(default=1, ge=1, le=1000)
    total_limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_value(self) -> CouponTerms:
        if (self.value_yen is None) == (self.percent_off is None):
            raise ValueError("value_yen: give value_yen or percent_off, one of them")
        if _day_or_time(self.valid_to) < _day_or_time(self.valid_from):
            raise ValueError("valid_to: must not be before valid_from")
        return self


def _day_or_time(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


class CampaignCreate(BaseModel):
    """`POST /v1/campaigns` and `tsunagu campaign create`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: str | None = Field(default=None, description="line, email, app, catalog, ...")
    window: str | int = Field(default="14d", description="how long after assignment it counts")
    control_share: float = Field(default=0.1, ge=0, lt=1)
    segment_id: str | None = Field(default=None, max_length=100)
    coupon: CouponTerms | None = None

    @model_validator(mode="after")
    def _known(self) -> CampaignCreate:
        if self.channel is not None and self.channel not in CHANNELS | {"push", "webhook", "dm"}:
            raise ValueError(f"channel: {self.channel!r} is not a channel tsunagu sends on")
        window_seconds(self.window)
        return self


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    name: str
    channel: str | None
    window_seconds: int
    control_share: float
    segment_id: str | None
    coupon: dict[str, Any] | None
    created_at: datetime


def variant_of(
    campaign_id: str,
    profile_id: str,
    control_share: float,
    treatments: tuple[str, ...] = ("treatment",),
) -> str:
    """A customer's variant of a campaign, the same on every call and machine: a point in
    [0, 1) from a hash of both ids; below `control_share` the control, the rest split evenly
    among the treatments."""
    digest = hashlib.sha256(f"{campaign_id}\x1f{profile_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    if point < control_share:
        return "control"
    share = (1 - control_share) / len(treatments)
    return treatments[min(int((point - control_share) / share), len(treatments) - 1)]


def create_campaign(*, store: Store, body: CampaignCreate) -> Campaign:
    if body.segment_id is not None and not store.scalar(
        "SELECT count(*) FROM segments WHERE segment_id = ?", [body.segment_id]
    ):
        raise InvalidInput(f"segment_id: no segment {body.segment_id!r}", field="segment_id")
    campaign = Campaign(
        campaign_id="cmp_" + secrets.token_hex(6),
        name=body.name,
        channel=body.channel,
        window_seconds=window_seconds(body.window),
        control_share=body.control_share,
        segment_id=body.segment_id,
        coupon=body.coupon.model_dump(mode="json") if body.coupon else None,
        created_at=utcnow(),
    )
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                campaign.campaign_id,
                campaign.name,
                campaign.channel,
                campaign.window_seconds,
                campaign.control_share,
                campaign.segment_id,
                orjson.dumps(campaign.coupon).decode() if campaign.coupon else None,
                campaign.created_at,
            ],
        )
    return campaign


def get_campaign(*, store: Store, campaign_id: str) -> Campaign:
    rows = store.query(
        "SELECT campaign_id, name, channel, window_s, control_share, segment_id, coupon, "
        "created_at FROM campaigns WHERE campaign_id = ?",
        [campaign_id],
    )
    if not rows:
        raise NotFound(f"campaign: no campaign {campaign_id!r}", field="campaign_id")
    campaign_id, name, channel, window, share, segment_id, coupon, created = rows[0]
    terms = orjson.loads(coupon) if coupon else None
    return Campaign(campaign_id, name, channel, window, share, segment_id, terms, created)
