"""Campaign assignments and reports over HTTP and on the command line answer as the domain
does (tests/test_cli.py runs them through a running server)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
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

ASSIGNED = "user_id,variant\nM000,control\nM001,catalog\nM002,catalog\nM999,catalog\n"


def _buyers(store: Store) -> datetime:
    now = utcnow()
    store.insert_events(
        [
            normalize(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"M{n:03d}",
                    "properties": {"order_id": f"O{n}", "revenue": 1000 * n},
                    "context": {"channel": "store" if n % 2 else "web"},
                    "timestamp": now.isoformat(),
                },
                received_at=now,
                source="t",
            )
            for n in range(4)
        ]
    )
    build_graph(store=store, rules=IdentityRules())
    return now


def _campaign_starting_before(runner: CliRunner, base: list[str]) -> str:
    made = runner.invoke(
        app, [*base, "create", "カタログ", "--channel", "catalog", "--control", "0.3", "--json"]
    )
    assert made.exit_code == 0, made.output
    return str(json.loads(made.stdout)["campaign_id"])


def test_assignments_and_the_report_over_http(live_server: LiveServer) -> None:
    store = live_server.store
    bought = _buyers(store)
    _, admin = create_key(store=store, name="ops", scope="admin")
    _, read = create_key(store=store, name="bi", scope="read")
    auth = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=live_server.url, headers=auth, timeout=60) as client:
        start = (bought - timedelta(hours=1)).isoformat() + "Z"
        made = client.post(
            "/v1/campaigns",
            json={"name": "DM", "channel": "dm", "control_share": 0.3, "starts_at": "2026-01-01"},
        )
        assert made.status_code == 201, made.text
        campaign_id = made.json()["campaign_id"]
        lines = ASSIGNED.splitlines()
        csv_body = "".join(
            [f"{lines[0]},assigned_at\n", *(f"{line},{start}\n" for line in lines[1:])]
        )
        done = client.post(
            f"/v1/campaigns/{campaign_id}/assignments",
            content=csv_body.encode(),
            headers={"content-type": "text/csv"},
        )
        assert done.status_code == 200, done.text
        answer = done.json()
        assert (answer["assigned"], answer["rejected"]) == (3, 1)
        assert "user_id: no customer has this identifier" in answer["rejects"]
        rows = client.post(
            f"/v1/campaigns/{campaign_id}/assignments",
            json={"rows": [{"user_id": "M003", "variant": "catalog", "assigned_at": start}]},
        )
        assert rows.status_code == 200 and rows.json()["variants"] == {"catalog": 3, "control": 1}
        bad = client.post(f"/v1/campaigns/{campaign_id}/assignments", json={"rows": "M1"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "rows"
        report = client.get(
            f"/v1/campaigns/{campaign_id}/report", headers={"Authorization": f"Bearer {read}"}
        )
        assert report.status_code == 200, report.text
        variants = {v["variant"]: v for v in report.json()["variants"]}
        assert variants["catalog"]["conversions"] == 3
        assert variants["catalog"]["revenue"] == 1000 + 2000 + 3000
        assert variants["catalog"]["store"]["revenue"] == 1000 + 3000
        assert variants["control"]["revenue"] == 0  # M000's order is worth nothing
        missing = client.get("/v1/campaigns/cmp_nothing/report")
        assert missing.status_code == 404
        wrong = client.get(f"/v1/campaigns/{campaign_id}/report", params={"window": "soon"})
        assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "window"


def test_the_report_without_a_server(settings: Settings, tmp_path: Path) -> None:
    with Store(settings.database_path) as store:
        _buyers(store)
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "campaign"]
    campaign_id = _campaign_starting_before(runner, base)
    file = tmp_path / "dm.csv"
    file.write_text(ASSIGNED, encoding="utf-8")
    done = runner.invoke(app, [*base, "assign", campaign_id, str(file)])
    assert done.exit_code == 0, done.output
    assert "rejected" in done.output and "catalog: 2" in done.stdout
    assert "M999" in (tmp_path / "dm.csv.rejects.csv").read_text(encoding="utf-8")
    table = runner.invoke(app, [*base, "report", campaign_id])
    assert table.exit_code == 0 and "catalog" in table.stdout
    missing = runner.invoke(app, [*base, "assign", campaign_id, str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    report = runner.invoke(app, [*base, "report", campaign_id, "--json", "--window", "1d"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["window"] == "1d"
