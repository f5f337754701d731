"""The built-in journeys, each a function of its params returning a definition's trigger,
steps and goal (journeys.resolve fills them in).

- cart_abandonment: a product added to the cart; after `wait` (1h) a message on `channel`
  (line), unless the customer ordered meanwhile, online or in a store.
- favourite_in_stock: a product added to the wishlist; after `wait` (10m), if a favourite is in
  stock at a store within `radius_km` (10) of the customer, a message naming it and the store.
- store_visit_coupon: a store visit (a beacon, the app near a store), or with `near_km` any
  event of `event` (e.g. an app's "Location Updated") whose location is that close to a store
  (of `stores`, or any); the journey's coupon, then a message with its code.
- lapsed_catalogue: a member signs in (an identify call) after `lapsed` (180d) without an order; a
  catalogue by direct mail.
- post_purchase: an order on any channel; after `wait` (7d) a follow-up message.
"""

from __future__ import annotations

from typing import Any

from tsunagu.exceptions import InvalidInput

ORDER = {"event": "Order Completed"}


def _send(params: dict[str, Any], text: str, url: str | None = None) -> dict[str, Any]:
    message = params.get("message") or {"text": text, **({"url": url} if url else {})}
    return {"send": {"channel": params.get("channel", "line"), "message": message}}


def cart_abandonment(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "trigger": {"event": {"event": p.get("event", "Product Added")}},
        "steps": [{"wait": p.get("wait", "1h")},
                  _send(p, "カートに商品が残っています。お近くの店舗でもお試しいただけます。")],
        "goal": ORDER,
        "channel": p.get("channel", "line"),
    }  # fmt: skip


def favourite_in_stock(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "trigger": {"event": {"event": p.get("event", "Product Added to Wishlist")}},
        "steps": [
            {"wait": p.get("wait", "10m")},
            {"if": {"favourite_in_stock": {"radius_km": p.get("radius_km", 10)}},
             "then": [_send(p, "お気に入りの{product}が{store}に入荷しています。")]},
        ],
        "goal": ORDER,
        "channel": p.get("channel", "line"),
    }  # fmt: skip


def store_visit_coupon(p: dict[str, Any]) -> dict[str, Any]:
    trigger: dict[str, Any] = {"event": {"event": p.get("event", "Store Visited")}}
    if p.get("near_km") is not None:
        trigger["near_store"] = {"km": p["near_km"], "stores": p.get("stores")}
    return {
        "trigger": trigger,
        "steps": [{"coupon": {}},
                  _send(p, "ご来店ありがとうございます。本日使えるクーポン: {coupon_code}")],
        "channel": p.get("channel", "app"),
        "reentry": p.get("reentry", "once"),
    }  # fmt: skip


def lapsed_catalogue(p: dict[str, Any]) -> dict[str, Any]:
    lapsed = p.get("lapsed", "180d")
    return {
        "trigger": {"event": {"event": p.get("event", "identify")}},
        "steps": [
            {"if": {"rule": {"not": {"event": "Order Completed", "within": lapsed}}},
             "then": [{"direct_mail": {}}]},
        ],
        "channel": "dm",
        "reentry": p.get("reentry", "once"),
    }  # fmt: skip


def post_purchase(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "trigger": {"event": ORDER},
        "steps": [{"wait": p.get("wait", "7d")},
                  _send(p, "ご購入ありがとうございました。使い心地はいかがですか。")],
        "channel": p.get("channel", "line"),
        "reentry": p.get("reentry", "always"),
    }  # fmt: skip


TEMPLATES = {
    "cart_abandonment": cart_abandonment,
    "favourite_in_stock": favourite_in_stock,
    "store_visit_coupon": store_visit_coupon,
    "lapsed_catalogue": lapsed_catalogue,
    "post_purchase": post_purchase,
}


def build(name: str, params: dict[str, Any]) -> dict[str, Any]:
    if name not in TEMPLATES:
        raise InvalidInput(
            f"template: {name!r} is not one of {', '.join(TEMPLATES)}", field="template"
        )
    return TEMPLATES[name](params)


def describe() -> list[dict[str, str]]:
    """The templates and what each does (the module's list, one line each)."""
    lines = [line.strip() for line in (__doc__ or "").split("\n- ")[1:]]
    return [
        {"template": line.split(":", 1)[0], "does": " ".join(line.split(":", 1)[1].split())}
        for line in lines
    ]
