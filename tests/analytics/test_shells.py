"""The HTTP route and the CLI command run the same funnel as the domain, on fresh data."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.analytics.conftest import T0, TZ, crafted_messages
from tests.conftest import serve_app
from tsunagu.analytics.channels import ChannelsQuery, run_channels
from tsunagu.analytics.engine import Engine
from tsunagu.analytics.facts import rebuild
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, run_funnel
from tsunagu.api import create_app
from tsunagu.cli import app
from tsunagu.config import Settings
from tsunagu.events.normalize import normalize
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.remote import write_server_file
from tsunagu.store import Store

BODY = {
    "steps": [
        {"event": "A", "channel": "web"},
        {"event": "B"},
        {"event": "C", "where": {"category": "靴"}},
    ],
    "window": "2d",
    "from": "2026-03-01",
    "to": "2026-03-08",
    "breakdown": "channel",
}


def fill(store: Store, messages: list[dict]) -> None:  # type: ignore[type-arg]
    store.insert_events(
        [normalize(m, received_at=T0 + timedelta(days=30), source="t") for m in messages]
    )


def test_http_funnel_needs_a_key_refreshes_and_answers_as_the_domain(live_server) -> None:  # type: ignore[no-untyped-def]
    store: Store = live_server.store
    messages = crafted_messages()
    fill(store, messages[:400])
    build_graph(store=store, rules=IdentityRules())
    _, key = create_key(store=store, name="bi", scope="read")
    url = live_server.url + "/v1/analytics/funnel"
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.post(url, json=BODY).status_code == 401
    first = httpx.post(url, json=BODY, headers=auth)
    assert first.status_code == 200, first.text
    # Events arriving later are analysed at the next question, without a rebuild by hand.
    fill(store, messages[400:])
    second = httpx.post(url, json=BODY, headers=auth).json()
    assert second["steps"][0]["customers"] >= first.json()["steps"][0]["customers"]
    # What was appended equals what a rebuild makes.
    with store.transaction() as cur:
        rebuild(cur, IdentityRules(), timezone=TZ)
    direct = run_funnel(engine=Engine(store), query=parse(FunnelQuery, BODY), timezone=TZ)
    assert second["steps"] == [s.model_dump() for s in direct.steps]
    assert second["breakdown"][0]["value"] in ("web", "app", "store")
    bad = httpx.post(url, json={**BODY, "window": "forever"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "window"
    worse = httpx.post(
        url, json={**BODY, "steps": [{"event": "A"}, {"channel": "web"}]}, headers=auth
    )
    assert worse.status_code == 400 and worse.json()["error"]["field"] == "steps.1.event"
    between = httpx.post(
        url, json={**BODY, "exclusions": [{"event": "D", "between": [3, 1]}]}, headers=auth
    )
    assert between.status_code == 400 and between.json()["error"]["field"] == "exclusions.0.between"


def test_cli_funnel_json_is_the_http_answer(settings: Settings) -> None:
    with Store(settings.database_path) as store:
        fill(store, crafted_messages())
        build_graph(store=store, rules=IdentityRules())
    # The store has no analytics table yet: the command builds it.
    result = CliRunner().invoke(
        app,
        [
            "--data-dir",
            str(settings.data_dir),
            "funnel",
            "A@web",
            "B",
            '{"event": "C", "where": {"category": "靴"}}',
            "--window",
            "2d",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-08",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    with Store(settings.database_path) as store:
        want = run_funnel(
            engine=Engine(store), query=parse(FunnelQuery, {**BODY, "breakdown": None}), timezone=TZ
        )
    assert [s["customers"] for s in doc["steps"]] == [s.customers for s in want.steps]
    assert doc["steps"][1]["conversion_from_previous"] == pytest.approx(
        want.steps[1].conversion_from_previous
    )
    table = CliRunner().invoke(
        app, ["--data-dir", str(settings.data_dir), "funnel", "A", "B", "--mode", "any"]
    )
    assert table.exit_code == 0 and "customers" in table.stdout
    # Exclusions in either reading, a window of months: the CLI asks what the domain answers.
    for reading in ("customer", "attempt"):
        out = CliRunner().invoke(
            app,
            [
                "--data-dir", str(settings.data_dir), "funnel", "A", "B", "C",
                "--window", "3months", "--exclude", "D", "--exclusions-mode", reading, "--json",
            ],
        )  # fmt: skip
        assert out.exit_code == 0, out.output
        body = {
            "steps": [{"event": "A"}, {"event": "B"}, {"event": "C"}],
            "window": "3months",
            "exclusions": [{"event": "D"}],
            "exclusions_mode": reading,
        }
        with Store(settings.database_path) as store:
            want = run_funnel(engine=Engine(store), query=parse(FunnelQuery, body), timezone=TZ)
        assert [s["customers"] for s in json.loads(out.stdout)["steps"]] == [
            s.customers for s in want.steps
        ]
        assert json.loads(out.stdout)["window_seconds"] == 3 * 31 * 86400
    bad = CliRunner().invoke(
        app, ["--data-dir", str(settings.data_dir), "funnel", "A", "B", "--window", "soon"]
    )
    assert bad.exit_code == 2 and "window" in bad.output


def test_retention_and_paths_over_http_and_the_cli(live_server, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    store: Store = live_server.store
    fill(store, crafted_messages())
    build_graph(store=store, rules=IdentityRules())
    _, key = create_key(store=store, name="bi", scope="read")
    auth = {"Authorization": f"Bearer {key}"}
    body = {"start": {"event": "A"}, "return": {"event": "B"}, "grain": "day", "periods": 5}
    got = httpx.post(live_server.url + "/v1/analytics/retention", json=body, headers=auth)
    assert got.status_code == 200, got.text
    assert got.json()["cohorts"][0]["retained"][0] == got.json()["cohorts"][0]["customers"]
    bad = httpx.post(
        live_server.url + "/v1/analytics/retention", json={**body, "grain": "year"}, headers=auth
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "grain"
    paths = httpx.post(
        live_server.url + "/v1/analytics/paths",
        json={"event": {"event": "A"}, "depth": 2},
        headers=auth,
    )
    assert paths.status_code == 200 and paths.json()["links"][0]["source"].startswith("0:A")
    # While the server holds the store, the CLI (another process) asks it.
    write_server_file(settings.server_file, url=live_server.url, key=key)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "tsunagu",
            "--data-dir",
            str(settings.data_dir),
            "retention",
            "A",
            "B",
            "--grain",
            "day",
            "--periods",
            "5",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["cohorts"] == got.json()["cohorts"]
    assert "asking it" in cli.stderr


def test_channels_and_kpis_over_http_and_the_cli(sample_copy: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    _, key = create_key(store=sample_copy, name="bi", scope="read")
    auth = {"Authorization": f"Bearer {key}"}
    with serve_app(create_app(settings, store=sample_copy)) as url:
        got = httpx.get(
            url + "/v1/analytics/channels",
            params={"from": "2026-08-01", "ropo_days": 3},
            headers=auth,
        )
        assert got.status_code == 200, got.text
        direct = run_channels(
            engine=Engine(sample_copy),
            query=parse(ChannelsQuery, {"from": "2026-08-01", "ropo_days": 3}),
            timezone=settings.timezone,
        )
        assert got.json()["segments"] == [s.model_dump() for s in direct.segments]
        assert got.json()["ropo"]["orders"] == direct.ropo.orders
        bad = httpx.get(url + "/v1/analytics/channels", params={"ropo_days": 0}, headers=auth)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "ropo_days"
        kpis = httpx.get(
            url + "/v1/analytics/kpis", params={"grain": "week", "by_store": "true"}, headers=auth
        )
        assert kpis.status_code == 200 and kpis.json()["totals"][0]["store_id"]
        assert (
            httpx.get(url + "/v1/analytics/kpis", params={"grain": "hour"}, headers=auth).json()[
                "error"
            ]["field"]
            == "grain"
        )
        assert httpx.get(url + "/v1/analytics/kpis").status_code == 401
