"""Customers on the screens: found by any identifier, their timeline across channels in Japan
time with store names, their consent, and erasure by an admin only, confirmed by typing the id."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from tests.conftest import LiveServer
from tests.web.signin import form_token, sign_in

from tsunagu.activation.protections import reach
from tsunagu.identity.profiles import timeline


def _customer(shop: LiveServer) -> tuple[str, str, str]:
    """A profile with an e-mail and a member card and a till order (so a store on its
    timeline)."""
    return shop.store.query(
        "SELECT e.profile_id, min(e.value), min(c.value) FROM identity_nodes e "
        "JOIN identity_nodes c ON c.profile_id = e.profile_id AND c.type = 'member_card' "
        "JOIN identity_nodes u ON u.profile_id = e.profile_id AND u.type = 'user_id' "
        "WHERE e.type = 'email' AND u.value IN (SELECT user_id FROM events WHERE channel = 'store') "
        "GROUP BY e.profile_id ORDER BY e.profile_id LIMIT 1"
    )[0]


def test_a_customer_is_found_by_email_card_or_type_value(shop: LiveServer) -> None:
    profile_id, email, card = _customer(shop)
    with sign_in(shop.url, "analyst") as client:
        for q in (email.upper(), card, f"member_card:{card}", f" {email} "):
            answer = client.get("/profiles", params={"q": q})
            assert answer.status_code == 303, (q, answer.text[:300])
            assert answer.headers["location"] == f"/profiles/{profile_id}"
        missing = client.get("/profiles", params={"q": "nobody@example.jp"})
        assert missing.status_code == 404 and 'id="error"' in missing.text
        assert client.get("/profiles/p_nope").status_code == 404


def test_the_timeline_shows_every_channel_in_japan_time_with_store_names(
    shop: LiveServer,
) -> None:
    profile_id, _, _ = _customer(shop)
    names = dict(shop.store.query("SELECT store_id, name FROM stores"))
    page = timeline(store=shop.store, profile_id=profile_id, limit=50)
    with sign_in(shop.url, "marketer") as client:
        answer = client.get(f"/profiles/{profile_id}")
    assert answer.status_code == 200
    rows = re.findall(
        r'<tr data-channel="([^"]+)" data-message-id="([^"]+)">\s*<td class="when">([^<]+)</td>'
        r'.*?<td class="store">([^<]*)</td>',
        answer.text,
        re.S,
    )
    assert [(c, m) for c, m, _, _ in rows] == [(e["channel"], e["message_id"]) for e in page.items]
    tokyo = ZoneInfo("Asia/Tokyo")
    for (_, _, when, shown), item in zip(rows, page.items, strict=True):
        at = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00")).astimezone(tokyo)
        assert when == at.strftime("%Y-%m-%d %H:%M")
        assert shown == (names[item["store_id"]] if item["store_id"] else "")
    assert any(shown for *_, shown in rows), "no till order on the first page"
    consent = reach(shop.store, [profile_id], "email", "marketing")[profile_id]
    cell = re.search(
        r'<tr data-channel="email"><td>[^<]*</td>\s*<td class="[^"]*">([^<]+)<', answer.text
    )
    assert cell and cell.group(1) == (
        "同意あり" if consent.consent and not consent.withdrawn else "同意なし"
    )
    if page.next_before:
        older = re.search(r'id="older" href="\?([^"]+)"', answer.text)
        assert older
        with sign_in(shop.url, "marketer") as client:
            second = client.get(f"/profiles/{profile_id}?{older.group(1).replace('&amp;', '&')}")
        following = timeline(store=shop.store, profile_id=profile_id, before=page.next_before)
        assert f'data-message-id="{following.items[0]["message_id"]}"' in second.text


def test_the_timeline_of_one_channel(shop: LiveServer) -> None:
    profile_id, _, _ = _customer(shop)
    with sign_in(shop.url, "analyst") as client:
        answer = client.get(f"/profiles/{profile_id}?channel=store")
        assert client.get(f"/profiles/{profile_id}?channel=fax").status_code == 400
    channels = set(re.findall(r'<tr data-channel="([^"]+)" data-message-id', answer.text))
    assert channels == {"store"}


def test_only_an_admin_erases_and_only_after_typing_the_id(shop: LiveServer) -> None:
    profile_id, email, _ = _customer(shop)
    with sign_in(shop.url, "marketer") as marketer:
        shown = marketer.get(f"/profiles/{profile_id}")
        assert 'id="erase-form"' not in shown.text
        refused = marketer.post(f"/profiles/{profile_id}/erase",
                                data={"csrf": form_token(shown.text), "confirm": profile_id})  # fmt: skip
        assert refused.status_code == 403
    with sign_in(shop.url, "admin") as admin:
        shown = admin.get(f"/profiles/{profile_id}")
        assert 'id="erase-form"' in shown.text
        token = form_token(shown.text.split('id="erase-form"', 1)[1])
        forged = admin.post(f"/profiles/{profile_id}/erase", data={"confirm": profile_id})
        assert forged.status_code == 403
        wrong = admin.post(f"/profiles/{profile_id}/erase", data={"csrf": token, "confirm": "yes"})
        assert wrong.status_code == 303 and wrong.headers["location"].endswith("erase=mismatch")
        assert "入力した ID が一致しません" in admin.get(wrong.headers["location"]).text
        assert admin.get(f"/profiles/{profile_id}").status_code == 200  # still there
        erased = admin.post(f"/profiles/{profile_id}/erase",
                            data={"csrf": token, "confirm": f" {profile_id} "})  # fmt: skip
        assert erased.status_code == 200 and 'id="erased"' in erased.text
        assert admin.get(f"/profiles/{profile_id}").status_code == 404
        assert admin.get("/profiles", params={"q": email}).status_code == 404
    assert (
        shop.store.scalar("SELECT count(*) FROM identity_nodes WHERE profile_id = ?", [profile_id])
        == 0
    )


def test_a_stranger_goes_to_sign_in(shop: LiveServer) -> None:
    away = httpx.get(shop.url + "/profiles?q=x")
    assert away.status_code == 303 and away.headers["location"].startswith("/login?next=")
