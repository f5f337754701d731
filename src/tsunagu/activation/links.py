"""Signed, expiring tokens in the links tsunagu sends.

A message's link gets `tg=TOKEN`; the token names the send and the customer's identifier and
when it expires, signed with the data dir's link secret (HMAC-SHA256). When the site's tracker
reports a page whose URL carries a valid token (events/collector.validate_messages), the event
is given the customer's identifier: the browser's anonymous id is then tied to the member by
the identity graph, though they never logged in, and a "Message Clicked" is recorded.
The same tokens sign unsubscribe links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson

PARAM = "tg"
LIFETIME_S = 30 * 86400
"""How long a link's token ties a browser to the customer."""


def secret_of(data_dir: Path) -> bytes:
    """The data dir's link secret, made on first use (kept beside the database), read once."""
    return _secret(str(data_dir.resolve()))


@lru_cache(maxsize=16)
def _secret(data_dir: str) -> bytes:
    path = Path(data_dir) / "link-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="ascii")
        path.chmod(0o600)
    return path.read_text(encoding="ascii").strip().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class LinkToken:
    send_key: str
    identifier: tuple[str, str]
    expires: int


def sign(secret: bytes, send_key: str, identifier: tuple[str, str], *, now: float | None = None,
         lifetime: int = LIFETIME_S) -> str:  # fmt: skip
    body = orjson.dumps(
        {"s": send_key, "t": identifier[0], "v": identifier[1],
         "e": int((now or time.time()) + lifetime)}
    )  # fmt: skip
    mac = hmac.new(secret, body, hashlib.sha256).digest()[:18]
    return f"{_b64(body)}.{_b64(mac)}"


def verify(secret: bytes, token: str, *, now: float | None = None) -> LinkToken | None:
    """The token's contents if it is ours, whole and not expired; otherwise None."""
    try:
        body_text, mac_text = token.split(".", 1)
        body = _unb64(body_text)
        if not hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).digest()[:18],
                                   _unb64(mac_text)):  # fmt: skip
            return None
        doc = orjson.loads(body)
        if int(doc["e"]) < (now or time.time()):
            return None
        return LinkToken(str(doc["s"]), (str(doc["t"]), str(doc["v"])), int(doc["e"]))
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


def with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({PARAM: token})))


def token_in(message: Any) -> str | None:
    """The `tg` token of a tracked page's URL (context.page.url or .search, properties.url)."""
    if not isinstance(message, dict):
        return None
    context = _dict(message.get("context"))
    page = _dict(context.get("page"))
    props = _dict(message.get("properties"))
    for candidate in (page.get("url"), page.get("search"), props.get("url"), props.get("search")):
        if isinstance(candidate, str) and f"{PARAM}=" in candidate:
            query = urlsplit(candidate).query if "://" in candidate else candidate.lstrip("?")
            found = parse_qs(query).get(PARAM)
            if found:
                return found[0]
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_FIELDS = {"user_id": "userId"}


def attach(message: dict[str, Any], token: LinkToken) -> dict[str, Any]:
    """The message with the customer's identifier, so the graph ties the browser to them."""
    kind, value = token.identifier
    if kind in _FIELDS:
        return message if message.get("userId") else {**message, "userId": value}
    context = dict(message.get("context") or {})
    traits = dict(context.get("traits") or {})
    traits.setdefault(kind, value)
    context["traits"] = traits
    return {**message, "context": context}
