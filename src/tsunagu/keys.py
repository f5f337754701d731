"""API keys for everything but the collector: `read` for GET and analytics, `admin` for changes,
`pos` for a till. A signed-in person's session stands for a key too (users.py): `write` for a
marketer (reads, segments, journeys, campaigns), `pos` limited to their store for store staff.

Profiles are personal data, so every endpoint except /healthz and the collector (which takes
source write keys) needs a key. Keys are shown once and stored as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal, cast

from tsunagu.exceptions import AuthError, Forbidden, InvalidInput
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


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(*, store: Store, name: str, scope: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret (not kept in clear)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name: must be 1 to 100 characters", field="name")
    if scope not in SCOPES:
        raise InvalidInput(f"scope: must be one of {', '.join(SCOPES)}", field="scope")
    secret = "tsk_" + secrets.token_urlsafe(32)
    key = ApiKey(
        key_id="key_" + secrets.token_hex(6),
        name=name,
        scope=cast(Scope, scope),
        key_prefix=secret[:8],
    )
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
            [key.key_id, name, scope, _hash(secret), key.key_prefix, utcnow()],
        )
    return key, secret


class KeyRing:
    """Checks bearer keys against the store (answers cached) and an optional local key that a
    running server hands to the CLI on the same machine through its server file."""

    def __init__(self, store: Store, *, local_admin_key: str | None = None) -> None:
        self._store = store
        self._local = local_admin_key
        self._known: dict[str, ApiKey] = {}

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
                    "SELECT key_id, name, scope, key_prefix FROM api_keys "
                    "WHERE key_hash = ? AND revoked_at IS NULL",
                    [digest],
                )
                if not rows:
                    raise AuthError("API key not recognised", field="Authorization")
                key = self._known[digest] = ApiKey(*rows[0])
        return allowed(key, needs)


def allowed(key: ApiKey, needs: Needs) -> ApiKey:
    """`key`, if its scope covers `needs`; else Forbidden."""
    if key.scope not in _ALLOWED[needs]:
        raise Forbidden(_REFUSAL[needs], field="Authorization")
    return key
