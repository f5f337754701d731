"""Signing in to the screens and what each role may do, over HTTP as a browser would."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import LiveServer
from tests.web.signin import PASSWORD, form_token, sign_in, users

from tsunagu.exceptions import Conflict, InvalidInput
from tsunagu.store import Store
from tsunagu.users import Sessions, create_user, disable_user, list_users


@pytest.fixture
def site(live_server: LiveServer) -> Iterator[LiveServer]:
    live_server.store.query(
        "INSERT INTO stores (store_id, name, updated_at) VALUES "
        "('S1', '渋谷店', now()::timestamp), ('S2', '梅田店', now()::timestamp)"
    )
    users(live_server.store, "S1")
    yield live_server


def _login(client: httpx.Client, login: str, password: str) -> httpx.Response:
    token = form_token(client.get("/login").text)
    return client.post("/login", data={"login": login, "password": password, "csrf": token})


def test_the_session_cookie_is_httponly_and_samesite(site: LiveServer) -> None:
    with httpx.Client(base_url=site.url) as client:
        answer = _login(client, "Ａｎａｌｙｓｔ", PASSWORD)  # full width, any case
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("tsunagu_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback; HTTPS sets it
        token = cookie.split(";")[0].split("=", 1)[1]
        stored = site.store.query("SELECT token_hash FROM web_sessions")
        assert len(stored) == 1 and token not in stored[0][0]  # kept as its hash


def test_a_wrong_password_is_refused_and_repeated_failures_wait(site: LiveServer) -> None:
    with httpx.Client(base_url=site.url) as client:
        wrong = _login(client, "marketer", "not the password")
        assert wrong.status_code == 401
        assert "ログイン ID またはパスワードが違います" in wrong.text
        unknown = _login(client, "nobody", PASSWORD)
        assert unknown.status_code == 401  # told apart from a wrong password by no one
        for _ in range(4):
            _login(client, "marketer", "still wrong")
        limited = _login(client, "marketer", PASSWORD)  # even the right one, for a while
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert _login(client, "admin", PASSWORD).status_code == 303  # another login is not held


def test_a_sign_in_without_the_forms_token_is_refused(site: LiveServer) -> None:
    with httpx.Client(base_url=site.url) as client:
        client.get("/login")
        forged = client.post("/login", data={"login": "admin", "password": PASSWORD})
        assert forged.status_code == 403
        other = client.post(
            "/login", data={"login": "admin", "password": PASSWORD, "csrf": "guessed"}
        )
        assert other.status_code == 403


def test_each_role_reaches_its_own_screens(site: LiveServer) -> None:
    for role in ("admin", "marketer", "analyst"):
        with sign_in(site.url, role) as client:
            assert client.get("/").status_code == 200, role
            staff = client.get("/staff")
            assert staff.status_code == (200 if role == "admin" else 403), role
    with sign_in(site.url, "staff") as client:
        home = client.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/staff"
        assert client.get("/staff").status_code == 200
        assert client.get("/staff?store_id=S2").status_code == 403  # another store's screen


def test_the_api_takes_the_session_with_its_csrf_token_for_changes(site: LiveServer) -> None:
    rule = {"rule": {"trait": "prefecture", "eq": "東京都"}}
    with sign_in(site.url, "analyst") as client:
        assert client.get("/v1/segments").status_code == 200
        csrf = form_token(client.get("/").text)
        counted = client.post("/v1/segments/preview", json=rule, headers={"X-CSRF-Token": csrf})
        assert counted.status_code == 200, counted.text  # a preview only reads
        made = client.post(
            "/v1/segments", json={"name": "都内", **rule}, headers={"X-CSRF-Token": csrf}
        )
        assert made.status_code == 403  # analysts read only
    with sign_in(site.url, "marketer") as client:
        csrf = form_token(client.get("/").text)
        forged = client.post("/v1/segments", json={"name": "都内", **rule})
        assert forged.status_code == 403 and forged.json()["error"]["field"] == "X-CSRF-Token"
        made = client.post(
            "/v1/segments", json={"name": "都内", **rule}, headers={"X-CSRF-Token": csrf}
        )
        assert made.status_code == 201, made.text
        keys = client.post(
            "/v1/keys", json={"name": "x", "scope": "admin"}, headers={"X-CSRF-Token": csrf}
        )
        assert keys.status_code == 403  # keys are an admin's
    with sign_in(site.url, "staff") as client:
        assert client.get("/v1/segments").status_code == 403  # staff see the store screen only


def test_signing_out_ends_the_session(site: LiveServer) -> None:
    with sign_in(site.url, "admin") as client:
        csrf = form_token(client.get("/").text)
        assert client.post("/logout", data={"csrf": csrf}).status_code == 303
        assert client.get("/").status_code == 303
        assert site.store.query("SELECT count(*) FROM web_sessions")[0][0] == 0


def test_users_are_validated_naming_the_field(store: Store) -> None:
    store.query(
        "INSERT INTO stores (store_id, name, updated_at) VALUES ('S1', '渋谷店', now()::timestamp)"
    )
    for kwargs, field in [
        ({"login": "a b", "role": "admin"}, "login"),
        ({"login": "a", "role": "owner"}, "role"),
        ({"login": "a", "role": "admin", "password": "short"}, "password"),
        ({"login": "a", "role": "staff"}, "store_id"),
        ({"login": "a", "role": "staff", "store_id": "S9"}, "store_id"),
        ({"login": "a", "role": "analyst", "store_id": "S1"}, "store_id"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            create_user(store=store, **{"password": PASSWORD, **kwargs})  # type: ignore[arg-type]
        assert refused.value.field == field, kwargs
    create_user(store=store, login="山田", role="staff", password=PASSWORD, store_id="S1")
    with pytest.raises(Conflict):
        create_user(store=store, login="山田", role="admin", password=PASSWORD)
    (hashed,) = store.query("SELECT password_hash FROM users")[0]
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed


def test_a_disabled_user_can_no_longer_sign_in_and_loses_their_sessions(store: Store) -> None:
    create_user(store=store, login="hanako", role="marketer", password=PASSWORD)
    sessions = Sessions(store)
    session = sessions.sign_in("hanako", PASSWORD, client="t")
    assert session.token and sessions.session_of(session.token) is not None
    disable_user(store=store, login="HANAKO")
    sessions.forget("hanako")
    assert sessions.session_of(session.token) is None
    assert list_users(store=store) == []
    with pytest.raises(Exception, match="wrong login or password"):
        sessions.sign_in("hanako", PASSWORD, client="t")


def test_a_session_ends_when_it_expires(store: Store) -> None:
    create_user(store=store, login="taro", role="analyst", password=PASSWORD)
    sessions = Sessions(store, hours=-1)  # expired at once
    session = sessions.sign_in("taro", PASSWORD, client="t")
    assert session.token is not None and sessions.session_of(session.token) is None
