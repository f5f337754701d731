"""A campaign sent on LINE by a running server to LINE's API on loopback, and what comes back:
LINE's signed webhook (follow, block, account link, redeliveries), the link's token tying a
browser that never logged in to the member, and the unsubscribe link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller

from tests.activation.servers import Recorder, line_api
from tsunagu.api.app import create_app
from tsunagu.config import Settings
from tsunagu.events.sources import create_source
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.imports import run_import
from tsunagu.keys import create_key
from tsunagu.server import serve_in_thread
from tsunagu.store import Store

SECRET = "line-channel-secret"


@contextmanager
def _running(settings: Settings, members: str) -> Iterator[tuple[str, Store, str, str]]:
    """A served store holding `members` (a CSV): its URL, the store, a web source's write key
    and an admin key."""
    path = settings.data_dir.parent / "members.csv"
    path.write_text(members, encoding="utf-8")
    with Store(settings.database_path) as store:
        run_import(store=store, kind="members", path=path)
        build_graph(store=store, rules=IdentityRules())
        _, write_key = create_source(store=store, name="web")
        _, admin = create_key(store=store, name="ops", scope="admin")
        with serve_in_thread(create_app(settings, store=store)) as url:
            yield url, store, write_key, admin


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[httpx.Client, Store, Recorder, str]]:
    with line_api("line-token") as api:
        settings = Settings(
            data_dir=tmp_path / "data",
            line_channel_access_token="line-token",
            line_channel_secret=SECRET,
            line_api_base=api.url,
            quiet_hours="",
        )
        members = (
            "member_id,name,email,line_user_id,line_opt_in\n"
            "M1,山田 太郎,taro@example.jp,U" + "1" * 32 + ",false\n"
            "M2,佐藤 花子,hanako@example.jp,,false\n"
        )
        with _running(settings, members) as (url, store, write_key, admin):
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"},
                                  timeout=60)  # fmt: skip
            yield client, store, api, write_key
            client.close()


def _webhook(client: httpx.Client, *events: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body = orjson.dumps({"destination": "Ubot", "events": list(events)})
    sign = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return client.post("/v1/line/webhook", content=body,
                       headers={"x-line-signature": sign, "content-type": "application/json",
                                "authorization": ""})  # fmt: skip


def _event(kind: str, user: str, key: str, **more: Any) -> dict[str, Any]:
    return {"type": kind, "mode": "active", "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user}, "webhookEventId": key,
            "deliveryContext": {"isRedelivery": False}, **more}  # fmt: skip


def _campaign(client: httpx.Client, name: str) -> str:
    made = client.post("/v1/campaigns", json={
        "name": name, "channel": "line", "control_share": 0,
        "message": {"text": f"{name}のお知らせ", "url": "https://shop.example.jp/sale"},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    return str(made.json()["campaign_id"])


def test_line_from_follow_to_block(shop: Any) -> None:
    client, store, api, write_key = shop
    user = "U" + "1" * 32
    profile = store.scalar("SELECT profile_id FROM identity_nodes WHERE value = 'M1'")
    first = _campaign(client, "秋のセール")
    # Not opted in at the member import: nothing goes.
    held = client.post(f"/v1/campaigns/{first}/send", json={"profile_ids": [profile]})
    assert held.json()["reasons"] == {"no consent for line": 1}
    # LINE says the user followed the account; a redelivery of it, and a forgery, change nothing.
    follow = _event("follow", user, "01FOLLOW")
    assert _webhook(client, follow).json()["followed"] == 1
    assert _webhook(client, follow).json()["duplicates"] == 1
    assert _webhook(client, follow, secret="guess").status_code == 401
    no_sig = client.post("/v1/line/webhook", content=b"{}", headers={"authorization": ""})
    assert no_sig.status_code == 401
    second = _campaign(client, "冬のセール")
    sent = client.post(f"/v1/campaigns/{second}/send", json={"profile_ids": [profile]})
    assert sent.status_code == 200, sent.text
    assert sent.json()["sent"] == 1
    assert [r["to"] for r in api.received] == [user]
    again = client.post(f"/v1/campaigns/{second}/send", json={"profile_ids": [profile]})
    assert again.json()["already"] == 1 and len(api.received) == 1
    # The link's token: a browser that never logged in opens it and becomes the member's.
    link = re.search(r"https://\S+", api.received[0]["messages"][0]["text"])
    assert link is not None and "tg=" in link.group(0)
    page = httpx.post(f"{client.base_url}/v1/page", auth=(write_key, ""), json={
        "anonymousId": "browser-123", "name": "セール",
        "context": {"page": {"url": link.group(0)}},
    })  # fmt: skip
    assert page.status_code == 200, page.text
    build_graph(store=store, rules=IdentityRules())
    assert (
        store.scalar("SELECT profile_id FROM identity_nodes WHERE value = 'browser-123'") == profile
    )
    assert store.scalar("SELECT count(*) FROM events WHERE event = 'Message Clicked'") == 1
    forged = link.group(0)[:-3] + "xyz"
    httpx.post(f"{client.base_url}/v1/page", auth=(write_key, ""), json={
        "anonymousId": "browser-999", "context": {"page": {"url": forged}},
    })  # fmt: skip
    build_graph(store=store, rules=IdentityRules())
    assert (
        store.scalar("SELECT profile_id FROM identity_nodes WHERE value = 'browser-999'") != profile
    )
    # Blocked: nothing more on LINE.
    assert _webhook(client, _event("unfollow", user, "02BLOCK")).json()["blocked"] == 1
    third = _campaign(client, "年末セール")
    blocked = client.post(f"/v1/campaigns/{third}/send", json={"profile_ids": [profile]})
    assert blocked.json()["reasons"] == {"withdrew from line": 1}
    timeline = client.get(f"/v1/profiles/{profile}/timeline").json()["items"]
    names = [item["event"] for item in timeline]
    assert {"Message Sent", "Message Suppressed", "LINE Followed", "LINE Blocked"} <= set(names)


def test_account_link_ties_a_line_user_to_a_member(shop: Any) -> None:
    client, store, _, _ = shop
    user = "U" + "2" * 32
    nonce = client.post("/v1/line/link-nonce", json={"member_id": "M2"})
    assert nonce.status_code == 200, nonce.text
    missing = client.post("/v1/line/link-nonce", json={"member_id": "M404"})
    assert missing.status_code == 404
    link = {"result": "ok", "nonce": nonce.json()["nonce"]}
    done = _webhook(client, _event("accountLink", user, "03LINK", link=link))
    assert done.status_code == 200 and done.json()["linked"] == 1
    reused = _webhook(client, _event("accountLink", user, "04LINK", link=link))
    assert reused.json()["linked"] == 0
    build_graph(store=store, rules=IdentityRules())
    member = store.scalar("SELECT profile_id FROM identity_nodes WHERE value = 'M2'")
    assert store.scalar(f"SELECT profile_id FROM identity_nodes WHERE value = '{user}'") == member


def test_the_unsubscribe_link(shop: Any) -> None:
    client, store, api, _ = shop
    user = "U" + "1" * 32
    _webhook(client, _event("follow", user, "05FOLLOW"))
    profile = store.scalar("SELECT profile_id FROM identity_nodes WHERE value = 'M1'")
    first = _campaign(client, "A")
    client.post(f"/v1/campaigns/{first}/send", json={"profile_ids": [profile]})
    token = re.search(r"tg=([\w.\-]+)", api.received[0]["messages"][0]["text"])
    assert token is not None
    base = f"{client.base_url}/v1/unsubscribe?tg={token.group(1)}"
    page = httpx.get(base)
    assert page.status_code == 200 and "配信を停止する" in page.text
    forged = httpx.get(f"{client.base_url}/v1/unsubscribe?tg=forged")
    assert forged.status_code == 404 and "無効" in forged.text  # a page for the person who clicked
    stopped = httpx.post(base, data={"List-Unsubscribe": "One-Click"})
    assert stopped.status_code == 200 and "配信を停止しました" in stopped.text
    second = _campaign(client, "B")
    held = client.post(f"/v1/campaigns/{second}/send", json={"profile_ids": [profile]})
    assert held.json()["reasons"] == {"no consent for line": 1}


def test_without_line_settings_the_webhook_says_so(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    with (
        Store(settings.database_path) as store,
        serve_in_thread(create_app(settings, store=store)) as url,
    ):
        answer = httpx.post(f"{url}/v1/line/webhook", content=b"{}")
        assert answer.status_code == 503
        assert answer.json()["error"]["field"] == "line_channel_secret"


def test_a_journey_answers_an_event_as_it_is_stored_not_at_its_tick(tmp_path: Path) -> None:
    """The collector's commit wakes the journeys: with an hour between ticks, the push still
    follows the event in seconds."""
    with line_api("line-token") as api:
        settings = Settings(
            data_dir=tmp_path / "data", line_channel_access_token="line-token",
            line_api_base=api.url, quiet_hours="", journey_tick_seconds=3600,
        )  # fmt: skip
        members = "member_id,name,line_user_id,line_opt_in\nM1,山田 太郎,U" + "1" * 32 + ",true\n"
        with _running(settings, members) as (url, _, write_key, admin):
            made = httpx.post(f"{url}/v1/journeys", headers={"Authorization": f"Bearer {admin}"},
                              json={"name": "カゴ落ち", "control_share": 0, "channel": "line",
                                    "trigger": {"event": {"event": "Product Added"}},
                                    "steps": [{"send": {"message": {"text": "カートの商品"}}}]})  # fmt: skip
            assert made.status_code == 201, made.text
            sent = httpx.post(f"{url}/v1/track", auth=(write_key, ""), json={
                "event": "Product Added", "userId": "M1", "messageId": "add-1"})  # fmt: skip
            assert sent.status_code == 200, sent.text
            deadline = time.monotonic() + 30
            while not api.received and time.monotonic() < deadline:
                time.sleep(0.05)
    assert [(m["to"], m["messages"][0]["text"]) for m in api.received] == [
        ("U" + "1" * 32, "カートの商品")
    ]


def test_an_opened_email_is_on_the_timeline_once(tmp_path: Path) -> None:
    """An HTML e-mail through a real SMTP server carries an image whose loading records
    "Message Opened" for that send; reloading it, or a forged token, adds nothing."""
    from tests.activation.test_channels import _Inbox
    from tests.e2e.processes import free_port

    inbox, port = _Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        settings = Settings(data_dir=tmp_path / "data", smtp_host="127.0.0.1", smtp_port=port,
                            smtp_starttls=False, mail_from="info@shop.example.jp",
                            quiet_hours="")  # fmt: skip
        members = "member_id,name,email,email_opt_in\nM1,山田 太郎,taro@example.jp,true\n"
        with _running(settings, members) as (url, store, _, admin):
            profile = store.scalar("SELECT profile_id FROM identity_nodes WHERE value = 'M1'")
            auth = {"Authorization": f"Bearer {admin}"}
            made = httpx.post(f"{url}/v1/campaigns", headers=auth, json={
                "name": "秋の新作メール", "channel": "email", "control_share": 0,
                "message": {"text": "秋の新作", "subject": "秋の新作のご案内",
                            "html": "<html><body><p>秋の<b>新作</b></p></body></html>"}})  # fmt: skip
            campaign_id = made.json()["campaign_id"]
            sent = httpx.post(f"{url}/v1/campaigns/{campaign_id}/send", headers=auth,
                              json={"profile_ids": [profile]})  # fmt: skip
            assert sent.json()["sent"] == 1, sent.text
            part = inbox.messages[0].get_body(("html",))
            assert part is not None
            page = part.get_content()
            found = re.search(r'<img src="([^"]+/v1/open\?tg=[^"]+)"', page)
            assert found is not None and page.index("<img") < page.index("</body>")
            pixel = html.unescape(found.group(1)).replace(
                f"http://{settings.host}:{settings.port}", url
            )
            for _ in range(2):
                image = httpx.get(pixel)
                assert image.status_code == 200 and image.headers["content-type"] == "image/gif"
            forged = httpx.get(f"{url}/v1/open?tg=forged")
            assert forged.status_code == 200 and forged.content == image.content
            opened = store.query(
                "SELECT user_id, json_extract_string(raw, '$.properties.campaign_id') FROM events "
                "WHERE event = 'Message Opened'"
            )
            assert opened == [("M1", campaign_id)]
    finally:
        smtp.stop()
