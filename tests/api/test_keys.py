"""API keys expire, are revoked at once and rotate with a grace period, in the domain and over
HTTP (where a revoked key is refused by the very next request, not when a cache lets go)."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from tests.conftest import LiveServer
from tsunagu.exceptions import AuthError, InvalidInput, NotFound, Refused
from tsunagu.keys import KeyRing, create_key, duration, list_keys, revoke_key, rotate_key
from tsunagu.store import Store, utcnow


def test_an_expired_key_is_refused_naming_when(store: Store) -> None:
    ring = KeyRing(store)
    key, secret = create_key(
        store=store, name="bi", scope="read", expires_at=utcnow() + timedelta(seconds=1)
    )
    assert ring.authenticate(secret, needs="read").key_id == key.key_id
    with store.transaction() as cur:
        cur.execute(
            "UPDATE api_keys SET expires_at = ? WHERE key_id = ?",
            [utcnow() - timedelta(seconds=1), key.key_id],
        )
    ring.forget()
    with pytest.raises(AuthError, match="expired at"):
        ring.authenticate(secret, needs="read")
    with pytest.raises(InvalidInput, match="expires_at"):
        create_key(store=store, name="x", scope="read", expires_at=utcnow() - timedelta(days=1))


def test_a_cached_key_is_refused_once_it_expires(store: Store) -> None:
    ring = KeyRing(store)
    ends = utcnow() + timedelta(seconds=1)
    _, secret = create_key(store=store, name="bi", scope="read", expires_at=ends)
    ring.authenticate(secret, needs="read")  # cached now
    assert ring.knows(secret)
    time.sleep(max(0.0, (ends - utcnow()).total_seconds()) + 0.05)
    with pytest.raises(AuthError, match="expired"):
        ring.authenticate(secret, needs="read")


def test_rotation_keeps_name_scope_and_gives_the_old_key_its_grace(store: Store) -> None:
    ring = KeyRing(store)
    old, old_secret = create_key(store=store, name="till-12", scope="pos")
    new, new_secret = rotate_key(store=store, key_id=old.key_id, grace=timedelta(hours=2))
    assert (new.name, new.scope) == ("till-12", "pos") and new_secret != old_secret
    ring.forget()
    assert ring.authenticate(old_secret, needs="pos").key_id == old.key_id  # in its grace
    assert ring.authenticate(new_secret, needs="pos").key_id == new.key_id
    listed = {k.key_id: k for k in list_keys(store=store)}
    assert listed[old.key_id].rotated_to == new.key_id
    ends = listed[old.key_id].expires_at
    assert ends is not None and abs(ends - (utcnow() + timedelta(hours=2))) < timedelta(minutes=1)
    with pytest.raises(Refused, match="rotated already"):
        rotate_key(store=store, key_id=old.key_id)
    with pytest.raises(NotFound, match="key_nosuch"):
        rotate_key(store=store, key_id="key_nosuch")


def test_revocation_and_rotation_without_grace_refuse_at_once(store: Store) -> None:
    ring = KeyRing(store)
    a, a_secret = create_key(store=store, name="a", scope="admin")
    b, b_secret = create_key(store=store, name="b", scope="read")
    ring.authenticate(a_secret, needs="admin")
    ring.authenticate(b_secret, needs="read")
    revoke_key(store=store, key_id=a.key_id)
    rotate_key(store=store, key_id=b.key_id, grace=timedelta(0))
    ring.forget()
    for secret in (a_secret, b_secret):
        with pytest.raises(AuthError, match="not recognised"):
            ring.authenticate(secret, needs="read")
    assert revoke_key(store=store, key_id=a.key_id).revoked_at is not None
    with pytest.raises(Refused):
        rotate_key(store=store, key_id=a.key_id)


def test_durations_name_their_field() -> None:
    assert duration("90d", field="expires_in") == timedelta(days=90)
    assert duration("0", field="grace") == timedelta(0)
    with pytest.raises(InvalidInput) as caught:
        duration("soon", field="expires_in")
    assert caught.value.field == "expires_in" and "expires_in" in caught.value.message


def test_keys_over_http(live_server: LiveServer) -> None:
    url, store = live_server.url, live_server.store
    _, admin = create_key(store=store, name="ops", scope="admin")
    auth = {"Authorization": f"Bearer {admin}"}
    made = httpx.post(
        url + "/v1/keys", json={"name": "bi", "scope": "read", "expires_in": "30d"}, headers=auth
    )
    assert made.status_code == 200, made.text
    secret, key_id = made.json()["key"], made.json()["key_id"]
    assert made.json()["expires_at"] is not None
    bad = httpx.post(
        url + "/v1/keys",
        json={"name": "bi", "scope": "read", "expires_in": "forever"},
        headers=auth,
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "expires_in"

    def status(key: str) -> int:
        return httpx.get(url + "/v1/status", headers={"Authorization": f"Bearer {key}"}).status_code

    assert status(secret) == 200
    listed = httpx.get(url + "/v1/keys", headers=auth).json()
    assert {k["name"] for k in listed} == {"ops", "bi"}
    assert secret not in str(listed) and "key_hash" not in listed[0]
    assert (
        httpx.get(url + "/v1/keys", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 403
    )

    rotated = httpx.post(url + f"/v1/keys/{key_id}/rotate", json={"grace": "1h"}, headers=auth)
    assert rotated.status_code == 200 and rotated.json()["replaces"] == key_id
    new_secret, new_id = rotated.json()["key"], rotated.json()["key_id"]
    assert status(secret) == 200 and status(new_secret) == 200  # the old one's grace
    revoked = httpx.post(url + f"/v1/keys/{key_id}/revoke", headers=auth)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert status(secret) == 401  # the next request, though the key was cached
    assert status(new_secret) == 200
    assert httpx.post(url + f"/v1/keys/{key_id}/rotate", headers=auth).status_code == 422
    assert httpx.post(url + "/v1/keys/key_nosuch/revoke", headers=auth).status_code == 404
    assert (
        httpx.post(url + f"/v1/keys/{new_id}/rotate", json={"grace": "0"}, headers=auth).status_code
        == 200
    )
    assert status(new_secret) == 401
