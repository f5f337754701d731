"""Coupons over HTTP as a POS uses them, twenty tills at once; campaigns from the CLI."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.conftest import LiveServer
from tsunagu.cli import app
from tsunagu.config import Settings
from tsunagu.events.normalize import normalize
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.store import utcnow


def test_twenty_tills_at_once_redeem_one_coupon_once(live_server: LiveServer) -> None:
    store = live_server.store
    now = utcnow()
    store.insert_events(
        [
            normalize(
                {"type": "identify", "userId": "M1", "timestamp": now.isoformat()},
                received_at=now,
                source="t",
            )
        ]
    )
    build_graph(store=store, rules=IdentityRules())
    profile = store.scalar("SELECT profile_id FROM identity_nodes LIMIT 1")
    _, admin = create_key(store=store, name="pos", scope="admin")
    auth = {"Authorization": f"Bearer {admin}"}
    terms = {
        "percent_off": 10,
        "valid_from": str((now - timedelta(days=1)).date()),
        "valid_to": str((now + timedelta(days=1)).date()),
    }
    with httpx.Client(base_url=live_server.url, headers=auth, timeout=60) as client:
        made = client.post(
            "/v1/campaigns", json={"name": "一割引", "coupon": terms, "control_share": 0}
        )
        assert made.status_code == 201, made.text
        campaign_id = made.json()["campaign_id"]
        issued = client.post(
            f"/v1/campaigns/{campaign_id}/coupons", json={"profile_ids": [profile]}
        )
        (coupon,) = issued.json()["coupons"]
        assert coupon["qr"] == "TSUNAGU:COUPON:" + coupon["code"]
    answers: list[httpx.Response] = []
    # The tills hold a POS key: coupons only, no customer data.
    _, pos = create_key(store=store, name="till", scope="pos")
    at_till = {"Authorization": f"Bearer {pos}"}
    with httpx.Client(base_url=live_server.url, headers=at_till, timeout=60) as c:
        assert c.get(f"/v1/coupons/{coupon['code']}").status_code == 200
        assert c.get(f"/v1/profiles/{profile}").status_code == 403
        assert c.post("/v1/campaigns", json={"name": "x"}).status_code == 403

    def till(n: int) -> None:
        with httpx.Client(base_url=live_server.url, headers=at_till, timeout=60) as c:
            answers.append(
                c.post(f"/v1/coupons/{coupon['code']}/redeem",
                       json={"store_id": "S001", "receipt_id": f"R{n}", "amount_yen": 12000})
            )  # fmt: skip

    threads = [threading.Thread(target=till, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 19, codes
    won = next(a.json() for a in answers if a.status_code == 200)
    assert won["discount_yen"] == 1200
    with httpx.Client(base_url=live_server.url, headers=auth, timeout=60) as client:
        replay = client.post(
            f"/v1/coupons/{coupon['code']}/redeem",
            json={"store_id": "S001", "receipt_id": won["receipt_id"], "amount_yen": 12000},
        )
        assert replay.status_code == 200 and replay.json()["redemption_id"] == won["redemption_id"]
        assert (
            client.post(
                "/v1/coupons/0000-0000-0000-0/redeem", json={"store_id": "S", "receipt_id": "R"}
            ).status_code
            == 404
        )
        late = client.post(f"/v1/campaigns/{campaign_id}/coupons", json={})
        assert late.status_code == 400 and late.json()["error"]["field"] == "profile_ids"
        assert client.get(f"/v1/coupons/{coupon['code']}").json()["store_id"] == "S001"
        # Refusals name the rule over HTTP too; a cancelled receipt gives the coupon back.
        shop = client.post("/v1/campaigns", json={"name": "店舗限定", "control_share": 0,
                                                  "coupon": {**terms, "percent_off": None,
                                                             "value_yen": 500,
                                                             "min_purchase_yen": 3000,
                                                             "stores": ["S002"]}})  # fmt: skip
        assert shop.status_code == 201, shop.text
        (other,) = client.post(
            f"/v1/campaigns/{shop.json()['campaign_id']}/coupons", json={"profile_ids": [profile]}
        ).json()["coupons"]
        for body, field in [
            ({"store_id": "S001", "receipt_id": "R9", "amount_yen": 5000}, "store_id"),
            ({"store_id": "S002", "receipt_id": "R9", "amount_yen": 2000}, "amount_yen"),
        ]:
            refused = client.post(f"/v1/coupons/{other['code']}/redeem", json=body)
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["field"] == field
        voided = client.post(
            f"/v1/coupons/{coupon['code']}/void", json={"receipt_id": won["receipt_id"]}
        )
        assert voided.status_code == 200 and voided.json()["voided"] is True, voided.text
        anew = client.post(f"/v1/coupons/{coupon['code']}/redeem",
                           json={"store_id": "S003", "receipt_id": "R99", "amount_yen": 1000})  # fmt: skip
        assert anew.status_code == 200, anew.text
        assert anew.json()["redemption_id"] != won["redemption_id"]


def test_a_campaign_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    terms = tmp_path / "coupon.json"
    terms.write_text(
        json.dumps({"value_yen": 300, "valid_from": "2026-12-01", "valid_to": "2026-12-31"})
    )
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "campaign", "create"]
    made = runner.invoke(
        app, [*base, "冬のLINEクーポン", "--channel", "line", "--coupon", str(terms), "--json"]
    )
    assert made.exit_code == 0, made.output
    doc = json.loads(made.stdout)
    assert doc["campaign_id"].startswith("cmp_") and doc["coupon"]["value_yen"] == 300
    bad = runner.invoke(app, [*base, "x", "--channel", "fax"])
    assert bad.exit_code == 2 and "channel" in bad.output
