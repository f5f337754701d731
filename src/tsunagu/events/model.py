"""The one event model: Segment Tracking API messages, online and offline alike.

A POS sale is a ``track`` "Order Completed" with ``context.channel = "store"`` and
``properties.store_id``; a beacon hit is a "Store Visited". Unknown fields are kept, at every
level, because retailers send what their systems have and a later analysis may need it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)


class Channel(StrEnum):
    web = "web"
    app = "app"
    line = "line"
    store = "store"
    call_center = "call_center"
    catalog = "catalog"
    email = "email"


CHANNELS: frozenset[str] = frozenset(c.value for c in Channel)


class IdentifierType(StrEnum):
    """Identifiers a profile can hold (normalised before matching, see identity/)."""

    anonymous_id = "anonymous_id"
    user_id = "user_id"
    email = "email"
    phone = "phone"
    line_user_id = "line_user_id"
    member_card = "member_card"
    device_id = "device_id"


ECOMMERCE_EVENTS: tuple[str, ...] = (
    "Products Searched",
    "Product List Viewed",
    "Product Viewed",
    "Product Clicked",
    "Product Added",
    "Product Removed",
    "Product Added to Wishlist",
    "Cart Viewed",
    "Checkout Started",
    "Checkout Step Completed",
    "Payment Info Entered",
    "Order Completed",
    "Order Updated",
    "Order Refunded",
    "Order Cancelled",
    "Coupon Entered",
    "Coupon Applied",
    "Coupon Denied",
    "Coupon Removed",
)
"""Segment e-commerce spec v2 event names."""

OMO_EVENTS: tuple[str, ...] = (
    "Store Visited",
    "Coupon Issued",
    "Coupon Redeemed",
    "Message Sent",
    "Message Opened",
    "Catalog Sent",
)
"""Events tsunagu adds for what happens offline and in messaging."""

SYSTEM_EVENTS: tuple[str, ...] = (
    "Segment Entered",
    "Segment Exited",
    "Journey Entered",
    "Journey Exited",
)
"""Events tsunagu records of its own doing on a profile's timeline: not the customer's actions,
so analytics leaves them out."""

RETAILER_EVENTS: tuple[str, ...] = (
    "Message Sent",
    "Message Delivered",
    "Message Suppressed",
    "Message Deferred",
    "Message Failed",
    "Message Opened",
    "Catalog Sent",
    "Coupon Issued",
)
"""What the retailer did to a customer (sent, issued) or saw of it (an open, by a pixel or
the LINE platform): in analytics, but not a visit of the customer's in a campaign report."""

MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]
MESSAGE_TYPES: tuple[str, ...] = ("track", "identify", "page", "screen", "group", "alias")


def _id_to_str(value: Any) -> Any:
    # Segment's clients accept numeric ids and send them as JSON numbers.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


# The length bound applies to the string only: null and "" are "absent", not errors.
Id = Annotated[
    Annotated[str, StringConstraints(max_length=1024)] | None, BeforeValidator(_id_to_str)
]


class _Message(BaseModel):
    """Fields every Segment message shares."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: MessageType
    message_id: Id = Field(default=None, alias="messageId")
    user_id: Id = Field(default=None, alias="userId")
    anonymous_id: Id = Field(default=None, alias="anonymousId")
    timestamp: datetime | None = None
    original_timestamp: datetime | None = Field(default=None, alias="originalTimestamp")
    sent_at: datetime | None = Field(default=None, alias="sentAt")
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_an_identity(self) -> _Message:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("userId or anonymousId is required")
        return self


class Track(_Message):
    type: Literal["track"] = "track"
    event: Annotated[str, Field(min_length=1, max_length=256)]
    properties: dict[str, Any] = Field(default_factory=dict)


class Identify(_Message):
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] = Field(default_factory=dict)


class Page(_Message):
    type: Literal["page"] = "page"
    name: str | None = Field(default=None, max_length=256)
    category: str | None = Field(default=None, max_length=256)
    properties: dict[str, Any] = Field(default_factory=dict)


class Screen(_Message):
    type: Literal["screen"] = "screen"
    name: str | None = Field(default=None, max_length=256)
    properties: dict[str, Any] = Field(default_factory=dict)


class Group(_Message):
    type: Literal["group"] = "group"
    group_id: Annotated[str, BeforeValidator(_id_to_str), Field(alias="groupId", max_length=1024)]
    traits: dict[str, Any] = Field(default_factory=dict)


class Alias(_Message):
    type: Literal["alias"] = "alias"
    previous_id: Annotated[
        str, BeforeValidator(_id_to_str), Field(alias="previousId", max_length=1024)
    ]

    @model_validator(mode="after")
    def _alias_needs_user_id(self) -> Alias:
        if self.user_id is None:
            raise ValueError("userId is required")
        return self


Message = Track | Identify | Page | Screen | Group | Alias

MODELS: dict[str, type[_Message]] = {
    "track": Track,
    "identify": Identify,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}
