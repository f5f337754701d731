"""Invariants under many parallel requests from real HTTP clients (coupon redemption and stock
holds have theirs in tests/activation/test_coupon_shells.py and tests/catalog/test_services.py):
a coupon per customer however many ask at once, segment membership that ends as the rule says
after parallel refreshes while events arrive, one journey entry and one message for a customer
whose triggers arrive together, and a journey's status that is one of those asked for."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.activation.servers import Recorder, line_api
from tests.conftest import serve_app
from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.events.normalize import normalize
from tsunagu.events.sources import create_source
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.store import Store, utcnow

MEMBERS = 40


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str, Store, Recorder]]:
    with line_api() as api:
        settings = Settings(
            data_dir=tmp_path / "data", quiet_hours="", line_channel_access_token="line-token",
            line_api_base=api.url, cap_channel_day=0, cap_all_day=0, cap_channel_week=0,
            cap_all_week=0, journey_tick_seconds=0.2, send_interval_seconds=0.5,
        )  # fmt: skip
        with Store(settings.database_path) as store:
            now = utcnow()
            store.insert_events([
                normalize({"type": "identify", "userId": f"M{n:03d}", "messageId": f"id-{n}",
                           "traits": {"line_user_id": f"U{n:032x}", "line_opt_in": True},
                           "timestamp": now.isoformat()}, received_at=now, source="t")
                for n in range(MEMBERS)
            ])  # fmt: skip
            build_graph(store=store, rules=IdentityRules())
            _, admin = create_key(store=store, name="ops", scope="admin")
            _, write_key = create_source(store=store, name="web")
            with serve_app(create_app(settings, store=store)) as url:
                yield url, {"Authorization": f"Bearer {admin}"}, write_key, store, api


def _profile(url: str, auth: dict[str, str], member: str) -> str:
    answer = httpx.get(url + "/v1/profiles/lookup", params={"type": "user_id", "value": member},
                       headers=auth)  # fmt: skip
    return str(answer.json()["profile_id"])


def test_a_coupon_per_customer_however_many_ask_at_once(shop) -> None:  # type: ignore[no-untyped-def]
    url, auth, _, store, _ = shop
    today = utcnow().date()
    campaign = httpx.post(url + "/v1/campaigns", headers=auth, json={
        "name": "お一人様一枚", "control_share": 0,
        "coupon": {"value_yen": 300, "valid_from": str(today - timedelta(days=1)),
                   "valid_to": str(today + timedelta(days=7)), "per_customer_limit": 1},
    }).json()["campaign_id"]  # fmt: skip
    profiles = [_profile(url, auth, f"M{n:03d}") for n in range(5)]

    def issue(k: int) -> int:
        answer = httpx.post(url + f"/v1/campaigns/{campaign}/coupons", headers=auth,
                            json={"profile_ids": profiles[k % 5 :] + profiles[: k % 5]},
                            timeout=60)  # fmt: skip
        assert answer.status_code == 200, answer.text
        return len(answer.json()["coupons"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        handed = list(pool.map(issue, range(32)))
    held = store.query(
        "SELECT profile_id, count(*) FROM coupons WHERE campaign_id = ? GROUP BY ALL", [campaign]
    )
    assert sorted(p for p, _ in held) == sorted(profiles)
    assert all(n == 1 for _, n in held)  # one each, though 32 requests asked for it
    assert sum(handed) >= 5  # every customer was handed theirs by some answer


def test_parallel_refreshes_while_events_arrive_end_as_the_rule_says(shop) -> None:  # type: ignore[no-untyped-def]
    url, auth, write_key, store, _ = shop
    rule = {"name": "閲覧あり", "rule": {"event": "Product Viewed", "at_least": 1}}
    segment = httpx.post(url + "/v1/segments", headers=auth, json=rule).json()["segment_id"]

    def view(n: int) -> int:
        message = {"userId": f"M{n:03d}", "event": "Product Viewed", "messageId": f"v-{n}"}
        return httpx.post(url + "/v1/track", json=message, auth=(write_key, "")).status_code

    def refresh(_: int) -> int:
        return httpx.post(url + f"/v1/segments/{segment}/refresh", headers=auth,
                          timeout=60).status_code  # fmt: skip

    with ThreadPoolExecutor(max_workers=16) as pool:
        sent = [pool.submit(view, n) for n in range(MEMBERS // 2)]
        refreshed = [pool.submit(refresh, k) for k in range(12)]
        assert all(f.result() == 200 for f in sent + refreshed)
    assert httpx.post(url + f"/v1/segments/{segment}/refresh", headers=auth).status_code == 200
    members = httpx.get(url + f"/v1/segments/{segment}/members", headers=auth).json()
    ids = [m["profile_id"] for m in members]
    assert len(ids) == len(set(ids))  # no one twice
    expected = {_profile(url, auth, f"M{n:03d}") for n in range(MEMBERS // 2)}
    assert set(ids) == expected
    preview = httpx.post(url + "/v1/segments/preview", headers=auth, json=rule).json()
    assert preview["customers"] == len(expected)


def test_triggers_at_once_make_one_entry_and_one_message(shop) -> None:  # type: ignore[no-untyped-def]
    url, auth, write_key, store, api = shop
    journey = httpx.post(url + "/v1/journeys", headers=auth, json={
        "name": "カート", "control_share": 0, "channel": "line", "reentry": "once",
        "trigger": {"event": {"event": "Product Added"}},
        "steps": [{"send": {"message": {"text": "カートに商品があります"}}}],
    })  # fmt: skip
    assert journey.status_code == 201, journey.text
    journey_id = journey.json()["journey_id"]
    time.sleep(1.0)  # its cursor starts at its creation

    def add(k: int) -> int:  # ten customers, twelve triggers each, all at once
        message = {"userId": f"M{k % 10:03d}", "event": "Product Added", "messageId": f"add-{k}"}
        return httpx.post(url + "/v1/track", json=message, auth=(write_key, "")).status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        assert set(pool.map(add, range(120))) == {200}
    deadline = time.monotonic() + 30
    while len(_reached(api)) < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # anything more would be a repeat
    reached = _reached(api)
    assert sorted(reached) == sorted(f"U{n:032x}" for n in range(10))  # each once
    entries = store.query(
        "SELECT profile_id, count(*) FROM journey_runs WHERE journey_id = ? GROUP BY ALL",
        [journey_id],
    )
    assert len(entries) == 10 and all(n == 1 for _, n in entries)

    def flip(k: int) -> str:
        action = "pause" if k % 2 else "resume"
        answer = httpx.post(url + f"/v1/journeys/{journey_id}/{action}", headers=auth)
        assert answer.status_code == 200, answer.text
        return action

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(flip, range(24)))
    status = httpx.get(url + f"/v1/journeys/{journey_id}", headers=auth).json()["status"]
    assert status in ("active", "paused")


def _reached(api: Recorder) -> list[str]:
    """Every LINE user a push or multicast named (a multicast names many)."""
    out: list[str] = []
    for item in api.received:
        to = item["to"]
        out.extend([to] if isinstance(to, str) else to)
    return out
