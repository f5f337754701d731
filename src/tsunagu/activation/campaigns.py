"""Campaigns: what is sent, to whom, with which control share and variants, the message and
the coupon it may carry; each customer's variant from a hash of campaign and customer
(assignments.py keeps them, report.py measures them)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tsunagu.analytics.filters import window_seconds
from tsunagu.catalog.inventory import local_to_utc
from tsunagu.events.model import CHANNELS
from tsunagu.exceptions import NotFound
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


class Message(BaseModel):
    """What a campaign sends: the text (LINE, push, the e-mail's plain part), an e-mail's
    subject and HTML, and the link it carries."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=5000)
    subject: str | None = Field(default=None, max_length=200)
    html: str | None = Field(default=None, max_length=200_000)
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")


class CampaignCreate(BaseModel):
    """`POST /v1/campaigns` and `tsunagu campaign create`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: str | None = Field(default=None, description="line, email, app, catalog, ...")
    window: str | int = Field(default="14d", description="how long after assignment it counts")
    control_share: float = Field(default=0.1, ge=0, lt=1)
    segment_id: str | None = Field(default=None, max_length=100)
    coupon: CouponTerms | None = None
    message: Message | None = None
    starts_at: datetime | None = Field(
        default=None, description="when it counts from for assignments without a time (now)"
    )
    treatments: list[str] = Field(
        default=["treatment"], min_length=1, max_length=10, description="the variants sent to"
    )
    purpose: Literal["marketing", "service"] = Field(
        default="marketing",
        description="marketing needs the channel's opt-in and keeps the caps, quiet hours and "
        "the global control group; service (a reservation ready) only a customer who did not "
        "withdraw from the channel",
    )

    @model_validator(mode="after")
    def _known(self) -> CampaignCreate:
        if self.channel is not None and self.channel not in SEND_CHANNELS:
            raise ValueError(f"channel: {self.channel!r} is not a channel tsunagu sends on")
        window_seconds(self.window)
        for name in self.treatments:
            if not 1 <= len(name) <= 50 or name == CONTROL:
                raise ValueError(
                    f"treatments: {name!r} is not a treatment's name (1-50, not control)"
                )
        if len(set(self.treatments)) != len(self.treatments):
            raise ValueError("treatments: each name once")
        return self


CONTROL = "control"
SEND_CHANNELS = CHANNELS | {"push", "webhook", "dm"}


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
    starts_at: datetime
    message: dict[str, Any] | None = None
    treatments: tuple[str, ...] = ("treatment",)
    purpose: str = "marketing"

    def variant(self, profile_id: str) -> str:
        return variant_of(self.campaign_id, profile_id, self.control_share, self.treatments)


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
        return CONTROL
    share = (1 - control_share) / len(treatments)
    return treatments[min(int((point - control_share) / share), len(treatments) - 1)]


def create_campaign(
    *, store: Store, body: CampaignCreate, timezone: str = "Asia/Tokyo"
) -> Campaign:
    """Keep the campaign (a start without an offset is local to `timezone`)."""
    if body.segment_id is not None and not store.scalar(
        "SELECT count(*) FROM segments WHERE segment_id = ?", [body.segment_id]
    ):
        raise NotFound(f"segment_id: no segment {body.segment_id!r}", field="segment_id")
    now = utcnow()
    campaign = Campaign(
        campaign_id="cmp_" + secrets.token_hex(6),
        name=body.name,
        channel=body.channel,
        window_seconds=window_seconds(body.window),
        control_share=body.control_share,
        segment_id=body.segment_id,
        coupon=body.coupon.model_dump(mode="json") if body.coupon else None,
        created_at=now,
        starts_at=local_to_utc(body.starts_at, timezone) if body.starts_at else now,
        message=body.message.model_dump(mode="json", exclude_none=True) if body.message else None,
        treatments=tuple(body.treatments),
        purpose=body.purpose,
    )
    with store.transaction() as cur:
        cur.execute(
            f"INSERT INTO campaigns ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
            [
                campaign.campaign_id,
                campaign.name,
                campaign.channel,
                campaign.window_seconds,
                campaign.control_share,
                campaign.segment_id,
                _json(campaign.coupon),
                campaign.created_at,
                campaign.starts_at,
                _json(campaign.message),
                list(campaign.treatments),
                campaign.purpose,
            ],
        )
    return campaign


_COLUMNS = (
    "campaign_id", "name", "channel", "window_s", "control_share", "segment_id", "coupon",
    "created_at", "starts_at", "message", "treatments", "purpose",
)  # fmt: skip


def _json(value: dict[str, Any] | None) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


def get_campaign(*, store: Store, campaign_id: str) -> Campaign:
    rows = store.query(
        f"SELECT {', '.join(_COLUMNS)} FROM campaigns WHERE campaign_id = ?", [campaign_id]
    )
    if not rows:
        raise NotFound(f"campaign_id: no campaign {campaign_id!r}", field="campaign_id")
    return _campaign(rows[0])


def list_campaigns(*, store: Store) -> list[Campaign]:
    """Every campaign (a journey's too), the newest first."""
    rows = store.query(
        f"SELECT {', '.join(_COLUMNS)} FROM campaigns ORDER BY created_at DESC, campaign_id"
    )
    return [_campaign(row) for row in rows]


def _campaign(row: tuple[Any, ...]) -> Campaign:
    cid, name, channel, window, share, segment_id, coupon, created, starts, msg, treats, purpose = (
        row
    )
    return Campaign(
        cid, name, channel, window, share, segment_id, _loads(coupon), created,
        starts or created, _loads(msg), tuple(treats or ("treatment",)), purpose or "marketing",
    )  # fmt: skip


def _loads(text: str | None) -> dict[str, Any] | None:
    return orjson.loads(text) if text else None
