"""The one event model: Segment Tracking API messages, online and offline alike.

A POS sale is a ``track`` "Order Completed" with ``context.channel = "store"`` and
``properties.store_id``; a beacon hit is a "Store Visited". Unknown fields are kept, at every
level, because retailers send what their systems have and a later analysis may need it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from msgspec import UNSET, Struct, UnsetType


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

MESSAGE_TYPES: tuple[str, ...] = ("track", "identify", "page", "screen", "group", "alias")

# The message as read from its JSON (msgspec: decoded straight from the bytes, in C). Only what a
# rule needs is declared; every other key, at every level, is skipped here and kept in the stored
# JSON. The checks that depend on the type (events/normalize.py) are made on these fields.

Id = str | int | float | None
"""Segment's clients accept numeric ids and send them as JSON numbers."""

Time = str | int | float | None
"""ISO 8601 text as sent (or a Unix time); parsed by the rules."""


class Traits(Struct, gc=False):
    """The identifiers a traits object may carry besides userId and anonymousId."""

    email: Any = UNSET
    phone: Any = UNSET
    line_user_id: Any = UNSET
    member_card: Any = UNSET


class Properties(Struct, gc=False):
    store_id: Any = UNSET
    url: Any = None  # a tracked link's token may be in the page's URL (activation/links.py)
    search: Any = None


class Context(Struct, frozen=True, gc=False):
    channel: Any = None
    store_id: Any = None
    device: Any = UNSET  # present (whatever it holds): sent by an app
    app: Any = UNSET
    traits: Traits | None = None
    page: Any = None


class Message(Struct, gc=False, rename={
    "message_id": "messageId", "user_id": "userId", "anonymous_id": "anonymousId",
    "original_timestamp": "originalTimestamp", "sent_at": "sentAt", "group_id": "groupId",
    "previous_id": "previousId",
}):  # fmt: skip
    """Fields of every Segment message type; which are required, or read, depends on `type`."""

    type: str | UnsetType = UNSET
    message_id: Id = None
    user_id: Id = None
    anonymous_id: Id = None
    timestamp: Time = None
    original_timestamp: Time = None
    sent_at: Time = None
    context: Context = Context()
    integrations: dict[str, Any] = {}
    event: Any = UNSET  # track
    name: Any = None  # page, screen
    category: Any = None  # page
    properties: Properties | None | UnsetType = UNSET  # track, page, screen
    traits: Traits | None | UnsetType = UNSET  # identify, group
    group_id: Id = None  # group
    previous_id: Id = None  # alias
