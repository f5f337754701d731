"""Journeys over HTTP and on the command line: create, list, look up, pause, resume, templates,
answering as the domain does."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.conftest import LiveServer
from tsunagu.cli import app
from tsunagu.config import Settings
from tsunagu.keys import create_key

JOURNEY = {"name": "カゴ落ち", "template": "cart_abandonment", "control_share": 0,
           "params": {"wait": "1h", "message": {"text": "カートをお忘れではありませんか"}}}  # fmt: skip


def test_journeys_over_http(live_server: LiveServer) -> None:
    _, admin = create_key(store=live_server.store, name="ops", scope="admin")
    _, reader = create_key(store=live_server.store, name="bi", scope="read")
    with httpx.Client(base_url=live_server.url, timeout=60,
                      headers={"Authorization": f"Bearer {admin}"}) as client:  # fmt: skip
        names = {t["template"] for t in client.get("/v1/journeys/templates").json()}
        assert {"cart_abandonment", "favourite_in_stock", "store_visit_coupon",
                "lapsed_catalogue", "post_purchase"} <= names  # fmt: skip
        made = client.post("/v1/journeys", json=JOURNEY)
        assert made.status_code == 201, made.text
        jid = made.json()["journey_id"]
        bad = client.post("/v1/journeys", json={**JOURNEY, "template": "no_such"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "template", bad.text
        paused = client.post(f"/v1/journeys/{jid}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        # By name too; a read key may look, not change.
        as_reader = {"Authorization": f"Bearer {reader}"}
        got = client.get("/v1/journeys/カゴ落ち", headers=as_reader)
        assert got.status_code == 200 and got.json()["journey_id"] == jid
        assert got.json()["status"] == "paused"
        assert client.post(f"/v1/journeys/{jid}/resume", headers=as_reader).status_code == 403
        resumed = client.post(f"/v1/journeys/{jid}/resume")
        assert resumed.status_code == 200 and resumed.json()["status"] == "active"
        listed = client.get("/v1/journeys", headers=as_reader).json()
        assert [(j["journey_id"], j["status"]) for j in listed] == [(jid, "active")]
        missing = client.post("/v1/journeys/jny_nobody/pause")
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "journey_id"


def test_journeys_on_the_command_line(settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "journey"]
    file = tmp_path / "journey.json"
    file.write_text(json.dumps(JOURNEY, ensure_ascii=False), encoding="utf-8")
    made = runner.invoke(app, [*base, "create", str(file), "--json"])
    assert made.exit_code == 0, made.output
    jid = json.loads(made.stdout)["journey_id"]
    assert runner.invoke(app, [*base, "pause", "カゴ落ち"]).exit_code == 0
    listed = json.loads(runner.invoke(app, [*base, "list", "--json"]).stdout)
    assert [(j["journey_id"], j["status"]) for j in listed] == [(jid, "paused")]
    assert runner.invoke(app, [*base, "resume", jid]).exit_code == 0
    listed = json.loads(runner.invoke(app, [*base, "list", "--json"]).stdout)
    assert listed[0]["status"] == "active"
    shown = runner.invoke(app, [*base, "templates"])
    assert shown.exit_code == 0 and "cart_abandonment" in shown.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**JOURNEY, "steps": [{"wait": "soon"}], "template": None}))
    refused = runner.invoke(app, [*base, "create", str(bad)])
    assert refused.exit_code != 0 and "steps" in refused.output
