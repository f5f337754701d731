"""Segments over HTTP and on the command line answer as the domain does."""

from __future__ import annotations

import json
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
from tsunagu.store import Store, utcnow

RULE = {"event": "Product Viewed", "channel": "app", "within": "30d"}


def _viewers(store: Store) -> None:
    now = utcnow()
    store.insert_events(
        [
            normalize(
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": f"M{n:03d}",
                    "context": {"channel": "app" if n % 3 else "web"},
                    "timestamp": now.isoformat(),
                },
                received_at=now,
                source="t",
            )
            for n in range(30)
        ]
    )
    build_graph(store=store, rules=IdentityRules())


def test_segments_over_http(live_server: LiveServer) -> None:
    store = live_server.store
    _viewers(store)
    _, admin = create_key(store=store, name="ops", scope="admin")
    _, read = create_key(store=store, name="bi", scope="read")
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        auth = {"Authorization": f"Bearer {admin}"}
        looked = client.post("/v1/segments/preview", json={"rule": RULE}, headers=auth)
        assert looked.status_code == 200, looked.text
        assert looked.json()["customers"] == 20  # n % 3 != 0
        made = client.post(
            "/v1/segments", json={"name": "アプリで見た", "rule": RULE}, headers=auth
        )
        assert made.status_code == 201, made.text
        segment_id = made.json()["segment_id"]
        assert made.json()["members"] == 20
        members = client.get(
            f"/v1/segments/{segment_id}/members",
            params={"format": "csv"},
            headers={"Authorization": f"Bearer {read}"},
        )
        assert members.status_code == 200 and members.text.count("\n") == 21
        assert (
            client.post(
                "/v1/segments",
                json={"name": "x", "rule": RULE},
                headers={"Authorization": f"Bearer {read}"},
            ).status_code
            == 403
        )
        bad = client.post("/v1/segments/preview", json={"rule": {"consent": "fax"}}, headers=auth)
        assert bad.status_code == 400 and bad.json()["error"]["field"].startswith("rule")
        listed = client.get("/v1/segments", headers=auth).json()
        assert [s["name"] for s in listed] == ["アプリで見た"]
        # A campaign's coupon goes to the segment's members, by the segment's id.
        campaign = client.post("/v1/campaigns", headers=auth, json={
            "name": "アプリ閲覧者へ", "control_share": 0, "coupon": {
                "value_yen": 300, "valid_from": "2026-01-01", "valid_to": "2030-12-31"}})  # fmt: skip
        campaign_id = campaign.json()["campaign_id"]
        issued = client.post(f"/v1/campaigns/{campaign_id}/coupons", headers=auth,
                             json={"segment_id": segment_id})  # fmt: skip
        assert issued.status_code == 200, issued.text
        holders = {c["profile_id"] for c in issued.json()["coupons"]}
        in_segment = {r[0] for r in store.query(
            "SELECT profile_id FROM segment_members WHERE segment_id = ?", [segment_id])}  # fmt: skip
        assert holders == in_segment and len(holders) == 20
        unknown = client.post(f"/v1/campaigns/{campaign_id}/coupons", headers=auth,
                              json={"segment_id": "seg_nobody"})  # fmt: skip
        assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "segment_id"


def test_segments_on_the_command_line(settings: Settings, tmp_path: Path) -> None:
    with Store(settings.database_path) as store:
        _viewers(store)
    file = tmp_path / "segment.json"
    file.write_text(json.dumps({"name": "app-viewers", "rule": RULE}), encoding="utf-8")
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "segment"]
    looked = runner.invoke(app, [*base, "preview", str(file), "--json"])
    assert looked.exit_code == 0, looked.output
    assert json.loads(looked.stdout)["customers"] == 20
    made = runner.invoke(app, [*base, "create", str(file), "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["members"] == 20
    members = runner.invoke(app, [*base, "members", "app-viewers", "--csv"])
    assert members.exit_code == 0 and members.stdout.startswith("profile_id,member_id")
    assert len(members.stdout.strip().splitlines()) == 21
    listed = runner.invoke(app, [*base, "list", "--json"])
    assert json.loads(listed.stdout)[0]["members"] == 20
    file.write_text('{"name": "x", "rule": {"trait": "fan_level"}}', encoding="utf-8")
    bad = runner.invoke(app, [*base, "create", str(file)])
    assert bad.exit_code == 2 and "rule" in bad.output
