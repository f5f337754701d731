"""API keys for everything but the collector: `read` for GET and analytics, `admin` for changes,
`pos` for a till. A signed-in person's session stands for a key too (users.py): `write` for a
marketer (reads, segments, journeys, campaigns), `pos` limited to their store for store staff.

Profiles are personal data, so every endpoint except /healthz, /readyz and the collector (which
takes source write keys) needs a key. Keys are shown once and stored as SHA-256 hashes. A key may
expire (`expires_at`); it can be revoked at once, or rotated: a new secret for the same name and
scope, the old one kept valid for a grace period so that its users can switch without a gap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from tsunagu.exceptions import AuthError, Forbidden, InvalidInput, NotFound, Refused
from tsunagu.store import Store, utcnow

Scope = Literal["read", "write", "admin", "pos"]
SCOPES: tuple[str, ...] = ("read", "admin", "pos")
"""The scopes a key is created with. read: GET and analytics; admin: everything; pos: a till's
coupon look-ups, redemptions and voids only (no customer data)."""
Needs = Literal["read", "write", "admin", "pos"]
_ALLOWED: dict[str, tuple[str, ...]] = {
    "read": ("read", "write", "admin"),
    "write": ("write", "admin"),
    "admin": ("admin",),
    "pos": ("pos", "admin"),
}
_REFUSAL = {
    "read": "a POS key redeems coupons only",
    "write": "this needs an admin key (or a marketer's sign-in)",
    "admin": "this needs an admin key",
    "pos": "this needs a POS (or admin) key",
}


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    scope: Scope
    key_prefix: str
    store_id: str | None = None
    """Store staff's: the one store whose coupons they may redeem."""
    expires_at: datetime | None = None
    """Naive UTC; after it the key is refused."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as `tsunagu keys list` and GET /v1/keys show it: never its secret."""

    key_id: str
    name: str
    scope: str
    key_prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_to: str | None
    """The key that replaced it (`rotate`), if any."""

    @property
    def active(self) -> bool:
        now = utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    *, store: Store, name: str, scope: str, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret (not kept in clear)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name: must be 1 to 100 characters", field="name")
    if scope not in SCOPES:
        raise InvalidInput(f"scope: must be one of {', '.join(SCOPES)}", field="scope")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expires_at: must be in the future", field="expires_at")
    with store.transaction() as cur:
        return _insert(cur, name, cast(Scope, scope), expires_at)


def _insert(cur: Any, name: str, scope: Scope, expires_at: datetime | None) -> tuple[ApiKey, str]:
    secret = "tsk_" + secrets.token_urlsafe(32)
    key = ApiKey(
        key_id="key_" + secrets.token_hex(6),
        name=name,
        scope=scope,
        key_prefix=secret[:8],
        expires_at=expires_at,
    )
    cur.execute(
        "INSERT INTO api_keys (key_id, name, scope, key_hash, key_prefix, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [key.key_id, name, scope, _hash(secret), key.key_prefix, utcnow(), expires_at],
    )
    return key, secret


_INFO = (
    "SELECT key_id, name, scope, key_prefix, created_at, expires_at, revoked_at, rotated_to "
    "FROM api_keys"
)


def list_keys(*, store: Store) -> list[KeyInfo]:
    return [KeyInfo(*row) for row in store.query(_INFO + " ORDER BY created_at, key_id")]


def _find(cur: Any, key_id: str) -> KeyInfo:
    rows = cur.execute(_INFO + " WHERE key_id = ?", [key_id]).fetchall()
    if not rows:
        raise NotFound(
            f"key_id: no API key {key_id!r} (tsunagu keys list shows them)", field="key_id"
        )
    return KeyInfo(*rows[0])


def revoke_key(*, store: Store, key_id: str) -> KeyInfo:
    """Refuse the key from now on (revoking a revoked key changes nothing)."""
    with store.transaction() as cur:
        key = _find(cur, key_id)
        if key.revoked_at is None:
            cur.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", [utcnow(), key_id])
        return _find(cur, key_id)


def rotate_key(
    *, store: Store, key_id: str, grace: timedelta = timedelta(hours=24)
) -> tuple[ApiKey, str]:
    """A new key with the old one's name, scope and lifetime left; the old one stays valid for
    `grace` (zero: refused at once), then expires."""
    if grace < timedelta(0):
        raise InvalidInput("grace: must not be negative", field="grace")
    now = utcnow()
    with store.transaction() as cur:
        old = _find(cur, key_id)
        if not old.active or old.rotated_to is not None:
            raise Refused(
                f"key_id: {key_id} is revoked, expired or rotated already", field="key_id"
            )
        new, secret = _insert(cur, old.name, cast(Scope, old.scope), old.expires_at)
        ends = now + grace
        if old.expires_at is not None:
            ends = min(ends, old.expires_at)
        revoked = now if grace == timedelta(0) else None  # the old one is active: not revoked
        cur.execute(
            "UPDATE api_keys SET expires_at = ?, rotated_to = ?, revoked_at = ? WHERE key_id = ?",
            [ends, new.key_id, revoked, key_id],
        )
    return new, secret


class KeyRing:
    """Checks bearer keys against the store (answers cached) and an optional local key that a
    running server hands to the CLI on the same machine through its server file."""

    def __init__(self, store: Store, *, local_admin_key: str | None = None) -> None:
        self._store = store
        self._local = local_admin_key
        self._known: dict[str, ApiKey] = {}

    def forget(self) -> None:
        """Read every key from the store again (one was revoked or rotated)."""
        self._known = {}

    def knows(self, secret: str | None) -> bool:
        """Whether `authenticate` can answer `secret` without reading the store."""
        if not secret or (self._local and hmac.compare_digest(secret, self._local)):
            return True
        return _hash(secret) in self._known

    def authenticate(self, secret: str | None, *, needs: Needs) -> ApiKey:
        if not secret:
            raise AuthError(
                "API key missing: send it as 'Authorization: Bearer KEY' "
                "(create one with `tsunagu keys create NAME --scope read|admin|pos`)",
                field="Authorization",
            )
        if self._local and hmac.compare_digest(secret, self._local):
            key = ApiKey(key_id="local", name="local cli", scope="admin", key_prefix="local")
        else:
            digest = _hash(secret)
            key = self._known.get(digest)  # type: ignore[assignment]
            if key is None:
                rows = self._store.query(
                    "SELECT key_id, name, scope, key_prefix, NULL, expires_at FROM api_keys "
                    "WHERE key_hash = ? AND revoked_at IS NULL",
                    [digest],
                )
                if not rows:
                    raise AuthError("API key not recognised", field="Authorization")
                key = self._known[digest] = ApiKey(*rows[0])
            if key.expires_at is not None and key.expires_at <= utcnow():
                raise AuthError(
                    f"API key expired at {key.expires_at.isoformat(timespec='seconds')}Z",
                    field="Authorization",
                )
        return allowed(key, needs)


def duration(text: str, *, field: str) -> timedelta:
    """'90d', '24h', '1y' ... as a timedelta; '0' or 'now' as none (an error names `field`)."""
    from tsunagu.analytics.filters import window_seconds

    if text.strip().lower() in ("0", "now"):
        return timedelta(0)
    try:
        return timedelta(seconds=window_seconds(text))
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("window", field, 1), field=field) from None


def allowed(key: ApiKey, needs: Needs) -> ApiKey:
    """`key`, if its scope covers `needs`; else Forbidden."""
    if key.scope not in _ALLOWED[needs]:
        raise Forbidden(_REFUSAL[needs], field="Authorization")
    return key
