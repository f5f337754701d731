"""Sources: where events come from, each with a write key (shown once, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tsunagu.exceptions import AuthError, InvalidInput
from tsunagu.store import Store, utcnow


@dataclass(frozen=True, slots=True)
class Source:
    source_id: str
    name: str
    key_prefix: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_source(*, store: Store, name: str) -> tuple[Source, str]:
    """Create a source and return it with its write key; the key is not kept in clear."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name: must be 1 to 100 characters", field="name")
    if store.scalar("SELECT count(*) FROM sources WHERE name = ?", [name]):
        raise InvalidInput(f"name: a source named {name!r} exists already", field="name")
    key = "wk_" + secrets.token_urlsafe(24)
    source = Source(source_id="src_" + secrets.token_hex(6), name=name, key_prefix=key[:8])
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, NULL)",
            [source.source_id, name, hash_key(key), source.key_prefix, utcnow()],
        )
    return source, key


def list_sources(*, store: Store) -> list[Source]:
    rows = store.query(
        "SELECT source_id, name, key_prefix FROM sources WHERE revoked_at IS NULL ORDER BY name"
    )
    return [Source(*row) for row in rows]


class SourceKeys:
    """Write-key check for the collector, with the answers cached (keys are looked up per request)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, Source] = {}

    def authenticate(self, key: str | None) -> Source:
        if not key:
            raise AuthError(
                "write key missing: send it as the HTTP basic user name", field="writeKey"
            )
        digest = hash_key(key)
        source = self._known.get(digest)
        if source is None:
            row = self._store.query(
                "SELECT source_id, name, key_prefix FROM sources "
                "WHERE key_hash = ? AND revoked_at IS NULL",
                [digest],
            )
            if not row:
                raise AuthError("write key not recognised", field="writeKey")
            source = self._known[digest] = Source(*row[0])
        return source
