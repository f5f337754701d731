"""Sources: where events come from, each with a write key (shown once, stored hashed) and the
web origins whose browsers may send with it.

A write key is not a secret: it sits in every page of the shop. What keeps a key copied onto
another site from feeding the store is the browser's `Origin`, checked against the source's
allowed origins (CORS): `https://shop.example.jp`, `https://*.example.jp` (any subdomain), or
`*` (any page at all, only if asked for). Server-side clients send no `Origin` and are not
concerned.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tsunagu.exceptions import AuthError, InvalidInput, NotFound
from tsunagu.store import Store, utcnow

_ORIGIN = re.compile(
    r"(https?)://(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:(\d{1,5}))?"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


@dataclass(frozen=True, slots=True)
class Source:
    source_id: str
    name: str
    key_prefix: str
    origins: tuple[str, ...] = field(default=())
    """Web origins whose browsers may send with this source's key (CORS)."""

    def allows(self, origin: str) -> bool:
        """Whether a browser page of `origin` may send events with this source's key."""
        return any(origin_matches(allowed, origin) for allowed in self.origins)


def origin_matches(allowed: str, origin: str) -> bool:
    """`origin` (as a browser sends it) is `allowed`, or within its `*.` subdomains, or
    `allowed` is `*`."""
    if allowed == "*" or allowed == origin:
        return True
    if "://*." not in allowed:
        return False
    scheme, rest = allowed.split("://*.", 1)
    return origin.startswith(scheme + "://") and origin.endswith("." + rest)


def normalize_origin(value: str) -> str:
    """An allowed origin as browsers write one: scheme and host in lower case, no default port,
    no path; `*` alone for any origin."""
    text = value.strip()
    if text == "*":
        return text
    text = text.lower().removesuffix("/")
    m = _ORIGIN.fullmatch(text)
    if not m:
        raise InvalidInput(
            f"origin: {value!r} is not a web origin such as https://shop.example.jp "
            "(scheme and host, an optional port, no path), https://*.example.jp or *",
            field="origin",
        )
    scheme, wildcard, host, port = m.group(1), m.group(2) or "", m.group(3), m.group(8)
    if port and (int(port) > 65535 or port == _DEFAULT_PORTS[scheme]):
        if int(port) > 65535:
            raise InvalidInput(f"origin: {value!r} has no such port", field="origin")
        port = None
    return f"{scheme}://{wildcard}{host}" + (f":{port}" if port else "")


def _origins(values: Iterable[str]) -> list[str]:
    return sorted({normalize_origin(v) for v in values})


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_source(*, store: Store, name: str, origins: Iterable[str] = ()) -> tuple[Source, str]:
    """Create a source and return it with its write key; the key is not kept in clear."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name: must be 1 to 100 characters", field="name")
    allowed = _origins(origins)
    if store.scalar("SELECT count(*) FROM sources WHERE name = ?", [name]):
        raise InvalidInput(f"name: a source named {name!r} exists already", field="name")
    key = "wk_" + secrets.token_urlsafe(24)
    source = Source(
        source_id="src_" + secrets.token_hex(6),
        name=name,
        key_prefix=key[:8],
        origins=tuple(allowed),
    )
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO sources (source_id, name, key_hash, key_prefix, created_at, origins) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [source.source_id, name, hash_key(key), source.key_prefix, utcnow(), allowed],
        )
    return source, key


def set_origins(*, store: Store, name: str, origins: Iterable[str]) -> Source:
    """Replace the web origins a source accepts browsers from."""
    allowed = _origins(origins)
    with store.transaction() as cur:
        rows = cur.execute(
            "UPDATE sources SET origins = ? WHERE name = ? AND revoked_at IS NULL "
            "RETURNING source_id, name, key_prefix, origins",
            [allowed, name],
        ).fetchall()
    if not rows:
        raise NotFound(f"name: no source named {name!r}", field="name")
    return _source(rows[0])


def _source(row: tuple) -> Source:  # type: ignore[type-arg]
    source_id, name, prefix, origins = row
    return Source(source_id, name, prefix, tuple(origins or ()))


def list_sources(*, store: Store) -> list[Source]:
    rows = store.query(
        "SELECT source_id, name, key_prefix, origins FROM sources WHERE revoked_at IS NULL "
        "ORDER BY name"
    )
    return [_source(row) for row in rows]


class SourceKeys:
    """Write-key check for the collector, with the answers cached (keys are looked up per
    request), and the origins any source allows (a browser's preflight names no source). The
    cache lasts `ttl` seconds, so a source changed by another process counts soon."""

    def __init__(self, store: Store, *, ttl: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl
        self._known: dict[str, Source] = {}
        self._origins: tuple[str, ...] | None = None
        self._since = time.monotonic()

    def forget(self) -> None:
        """Read the sources again (after one changed)."""
        self._known.clear()
        self._origins = None
        self._since = time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._since > self._ttl:
            self.forget()

    def authenticate(self, key: str | None) -> Source:
        if not key:
            raise AuthError(
                "write key missing: send it as the HTTP basic user name or as writeKey in the body",
                field="writeKey",
            )
        self._fresh()
        digest = hash_key(key)
        source = self._known.get(digest)
        if source is None:
            row = self._store.query(
                "SELECT source_id, name, key_prefix, origins FROM sources "
                "WHERE key_hash = ? AND revoked_at IS NULL",
                [digest],
            )
            if not row:
                raise AuthError("write key not recognised", field="writeKey")
            source = self._known[digest] = _source(row[0])
        return source

    def any_allows(self, origin: str) -> bool:
        """Whether some source accepts browsers of `origin`."""
        self._fresh()
        if self._origins is None:
            rows = self._store.query(
                "SELECT DISTINCT unnest(origins) FROM sources WHERE revoked_at IS NULL"
            )
            self._origins = tuple(r[0] for r in rows)
        return any(origin_matches(allowed, origin) for allowed in self._origins)
