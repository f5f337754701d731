"""What LINE's webhook tells tsunagu (POST /v1/line/webhook).

- The `X-Line-Signature` header is the base64 HMAC-SHA256 of the raw body with the channel
  secret, checked in constant time (line-bot-sdk's SignatureValidator) before anything is read.
- Each event is taken once: a redelivery (the same `webhookEventId`) is dropped.
- follow: the user may be messaged (LINE consent, marketing included); unfollow (a block):
  nothing more is sent on LINE, not even a service message.
- accountLink with result ok: the nonce tsunagu issued for a member (`link_nonce`) ties the
  LINE user to that member, by an identify event the identity graph reads; a nonce works once
  and for an hour.
- every event is also an event on the timeline, channel line ("LINE Followed", "LINE Blocked",
  "LINE Account Linked", "LINE Message Received", ...): a message or a postback is the
  customer's own doing, so a visit in a campaign report.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from linebot.v3.webhook import SignatureValidator

from tsunagu.activation.protections import record_consent
from tsunagu.events.normalize import normalize
from tsunagu.exceptions import AuthError, InvalidInput, NotFound
from tsunagu.store import Store, utcnow

NONCE_LIFETIME = timedelta(hours=1)
EVENT_NAMES = {
    "follow": "LINE Followed",
    "unfollow": "LINE Blocked",
    "message": "LINE Message Received",
    "postback": "LINE Postback",
    "accountLink": "LINE Account Linked",
    "beacon": "Store Visited",
}


class BadSignature(AuthError):
    code = "bad_signature"


@dataclass(slots=True)
class WebhookResult:
    events: int = 0
    duplicates: int = 0
    followed: int = 0
    blocked: int = 0
    linked: int = 0
    ignored: list[str] = field(default_factory=list)


def verify(body: bytes, signature: str | None, secret: str) -> None:
    if not signature:
        raise BadSignature("X-Line-Signature: missing", field="X-Line-Signature")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSignature("body: not UTF-8", field="body") from None
    if not SignatureValidator(secret).validate(text, signature):
        raise BadSignature("X-Line-Signature: does not match the body", field="X-Line-Signature")


def link_nonce(*, store: Store, member_id: str) -> str:
    """A nonce for LINE's account-link dialog, for a member who logged in on the shop."""
    if not store.scalar("SELECT count(*) FROM members WHERE member_id = ?", [member_id]):
        raise NotFound(f"member_id: no member {member_id!r}", field="member_id")
    nonce = secrets.token_urlsafe(24)
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO line_link_nonces VALUES (?, ?, ?, NULL)", [nonce, member_id, utcnow()]
        )
    return nonce


def receive(*, store: Store, body: bytes, signature: str | None, secret: str) -> WebhookResult:
    verify(body, signature, secret)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body: not JSON ({exc})", field="body") from None
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise InvalidInput("events: a list of LINE webhook events", field="events")
    result = WebhookResult()
    now = utcnow()
    rows = []
    for event in events:
        if not isinstance(event, dict):
            continue
        key = event.get("webhookEventId")
        user = (event.get("source") or {}).get("userId")
        kind = event.get("type")
        if not isinstance(key, str) or not isinstance(user, str) or kind not in EVENT_NAMES:
            result.ignored.append(str(kind))
            continue
        with store.transaction() as cur:
            fresh = cur.execute(
                "INSERT INTO line_webhook_events VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING 1",
                [key, now],
            ).fetchall()
        if not fresh:
            result.duplicates += 1
            continue
        result.events += 1
        at = _time(event.get("timestamp"), now)
        identifier = ("line_user_id", user)
        message: dict[str, Any] = {
            "type": "track",
            "event": EVENT_NAMES[kind],
            "anonymousId": f"line:{user}",
            "messageId": f"line-{key}",
            "timestamp": at.isoformat() + "Z",
            "context": {"channel": "line", "traits": {"line_user_id": user}},
            "properties": _properties(event),
        }
        if kind == "follow":
            record_consent(store, identifier, "line", ("all", "marketing"), True, at, "line follow")
            result.followed += 1
        elif kind == "unfollow":
            record_consent(store, identifier, "line", ("all",), False, at, "line unfollow")
            result.blocked += 1
        elif kind == "accountLink":
            member = _use_nonce(store, event.get("link") or {}, now)
            if member is None:
                result.ignored.append("accountLink without a valid nonce")
                message["event"] = "LINE Account Link Failed"
            else:
                message["userId"] = member
                result.linked += 1
        rows.append(normalize(message, received_at=now, source="line"))
    if rows:
        store.insert_events(rows)
    return result


def _use_nonce(store: Store, link: dict[str, Any], now: datetime) -> str | None:
    if link.get("result") != "ok" or not isinstance(link.get("nonce"), str):
        return None
    with store.transaction() as cur:
        found = cur.execute(
            "UPDATE line_link_nonces SET used_at = ? WHERE nonce = ? AND used_at IS NULL "
            "AND created_at >= ? RETURNING member_id",
            [now, link["nonce"], now - NONCE_LIFETIME],
        ).fetchall()
    return found[0][0] if found else None


def _time(ms: Any, default: datetime) -> datetime:
    if isinstance(ms, int | float) and ms > 0:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)
        return min(moment, default)
    return default


def _properties(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"line_event": event.get("type")}
    message = event.get("message")
    if isinstance(message, dict):
        out["message_type"] = message.get("type")
        if isinstance(message.get("text"), str):
            out["text"] = message["text"][:1000]
    if isinstance(event.get("postback"), dict):
        out["data"] = str(event["postback"].get("data", ""))[:300]
    if isinstance(event.get("beacon"), dict):
        out["hwid"] = event["beacon"].get("hwid")
    context = event.get("deliveryContext")
    if isinstance(context, dict) and context.get("isRedelivery"):
        out["redelivered"] = True
    return out
